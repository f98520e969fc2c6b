"""Code that exists for one figure family of the book: the library stays apart from it.

* :mod:`.layer_views`: the partition layer by layer, flat and lifted (Fig 1(a)) and node by node (Fig 8), and
  :mod:`.grid_sampling`: how a grid samples the exact partition (chapter 1);
* :mod:`.spline_vertices`: which splines carry a bend of a later spline or a turning point of the decision boundary,
  checked with the model's own forward pass (chapters 1 and 2);
* :mod:`.square_pruning`: node and weight pruning on the square and disk tasks (Figs 1(b), 1(c)), :mod:`.x_task`:
  pruning on the X-shaped task (Fig 2), :mod:`.mnist_slice`: a ConvNet on a slice of MNIST (Fig 3) (chapter 2);
* :mod:`.eb_training`: spline early-bird training against its baselines (chapter 4), and
  :mod:`.eb_training_report`: its summary table and accuracy-vs-training-FLOPs plot;
* :mod:`.strategies`: four ways to train a small MLP, with their cost (Fig 9);
* :mod:`.kmeans`: overparametrize-then-prune k-means (Fig 10);
* :mod:`.sawtooth`: a sawtooth small networks rarely learn (Fig 11).
"""
