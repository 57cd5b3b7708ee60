"""mnistbench: manual vs built-in vs scikit-learn classic models on MNIST, under one harness."""
__version__ = "0.1.0"
