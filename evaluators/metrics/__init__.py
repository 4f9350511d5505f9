"""Pure metric functions: numpy/torch in, floats out."""
