"""Helpers shared by several test modules."""
import numpy as np
import torch
import torch.nn as nn


def randomize_batchnorm(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give every BatchNorm non-trivial scales, shifts and running statistics (as after training); eval mode."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
                n = module.num_features
                module.weight.copy_(torch.rand(n, generator=generator) + 0.5)
                module.bias.copy_(torch.randn(n, generator=generator))
                module.running_mean.copy_(torch.randn(n, generator=generator))
                module.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
    return model.eval()


def random_interior_points(polygon: np.ndarray, n: int, generator: np.random.Generator) -> np.ndarray:
    """``n`` random convex combinations of a convex polygon's vertices (m, 2): points strictly inside it, (n, 2)."""
    weights = generator.dirichlet(np.ones(len(polygon)), size=n)
    return weights @ polygon


def held_bytes(partition) -> int:
    """Bytes of a partition's layers (pre-activation maps, packed codes, polygon vertices): a test's ``max_bytes``
    below this forces tiles."""
    return sum(layer.pre_activations.nbytes + layer.packed_codes.nbytes + layer.polygons.vertices.nbytes
               for layer in partition.layers)
