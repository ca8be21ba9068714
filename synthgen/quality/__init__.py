"""Is the data any good: pixel features, the label-fidelity filter and its classifiers, and the
Classification Accuracy Score (`synthgen eval`)."""
