"""Helpers shared by several test modules."""
import numpy as np
import torch
import torch.nn as nn

import spline_utils as su


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


def assert_agrees_with_the_models_forward(partition, model, plane, points_per_region: int = 2) -> None:
    """The oracle: at random points inside every region, the model's own codes equal the region's codes, and its
    float64 output equals the region's affine map."""
    generator = np.random.default_rng(0)
    points = np.concatenate([random_interior_points(region, points_per_region, generator)
                             for region in partition.regions])
    region = np.repeat(np.arange(partition.num_regions), points_per_region)
    inputs = torch.as_tensor(points) if plane is None else plane(points)
    np.testing.assert_array_equal(su.activation_codes(model, inputs).numpy(), partition.codes[region])
    slopes, offsets = partition.affine_maps()
    with torch.no_grad():
        outputs = model.double()(inputs.double()).numpy()
    np.testing.assert_allclose(np.einsum("rok,rk->ro", slopes[region], points) + offsets[region], outputs,
                               rtol=1e-9, atol=1e-9)
