"""Video I/O, streaming engine, datasets and loaders around the CDVD-TSP model."""
