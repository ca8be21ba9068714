"""Running jobs: the driver (checks, the locked run), the output's lifecycle, the executor and its
Ray actor pool, the actor and the Worker that writes and commits shards, the caption phase,
progress and the run log. Commands (commands/, cli/) drive it; it never imports them."""
