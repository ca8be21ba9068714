"""What the commands do beyond a plain run, each on top of the engine: sweep and its results,
submit to a cluster, estimates and calibration, captions, regenerating one sample."""
