"""hetero: battery heterostructure screening with DFT."""
__version__ = "0.1.0"
