"""``python -m spline_utils.data`` (``make data``): fill the MNIST cache once, fetching it if it is missing or fails
its check, and say where it is."""
from spline_utils.data.mnist_loader import fetch_mnist

path = fetch_mnist()
print(f"MNIST verified in {path} ({path.stat().st_size / 2**20:.1f} MiB)")
