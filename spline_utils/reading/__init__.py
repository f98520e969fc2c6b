"""Model reading: a torch.nn.Module becomes the one representation the engine partitions.

The only layer that knows torch module types: the table of supported operations (:mod:`.operations`), the reader of
plain Sequentials (:mod:`.sequential`), the torch.fx tracer (:mod:`.tracer`) into the graph of affine and max-affine
nodes (:mod:`.graph_ir`), and :func:`activation_codes`, the package's oracle that runs the model's own forward.
"""
