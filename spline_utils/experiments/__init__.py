"""Code that exists for one figure family of the book: the library stays apart from it.

Chapters 1 and 2 (the partition; what pruning does to it):

* :mod:`.layer_views`: the partition layer by layer, flat and lifted (Fig 1(a)) and node by node (Fig 8), and
  :mod:`.grid_sampling`: how a grid samples the exact partition (chapter 1);
* :mod:`.spline_vertices`: which splines carry a bend of a later spline or a turning point of the decision boundary,
  checked with the model's own forward pass (chapters 1 and 2);
* :mod:`.square_pruning`: node and weight pruning on the square and disk tasks (Figs 1(b), 1(c)), :mod:`.x_task`:
  pruning on the X-shaped task (Fig 2), :mod:`.mnist_slice`: a ConvNet on a slice of MNIST (Fig 3) (chapter 2);

Chapter 3 (spline trajectories and the spline early-bird):

* :mod:`.fc_trajectory`: the FCNet's splines along training (Figs 4(a), 14);
* :mod:`.mnist_canvas`: the MNIST subset, the 6-9 canvas and the probe sets (Fig 13);
* :mod:`.canvas_boundary`: where the 6-vs-9 boundary crosses the canvas, epoch by epoch;
* :mod:`.canvas_trajectory`: the small CNN's splines on the canvas (Fig 4(b)) and the epoch slider's frames;
* :mod:`.eb_runs`: training runs with every detector, their distance matrices and what they say;
* :mod:`.early_bird_figures`: the distance-matrix figures (Figs 5, 13, 15) and the threshold slider's frames;
* :mod:`.resnet_slices`: exact partitions of a window through the ResNet and what changed between epochs, with
  :mod:`.partition_changes`: which exact edges moved;
* :mod:`.layer_early_birds`: the network's EB epoch against each layer's;

chapters 4 and 5:

* :mod:`.eb_training`: spline early-bird training against its baselines (chapter 4), and
  :mod:`.eb_training_report`: its summary table and accuracy-vs-training-FLOPs plot;
* :mod:`.spline_policy`: the spline pruning policy on the Fig 6 network, its figure and sliders (chapter 4);
* :mod:`.strategies`: five ways to train a small MLP, with their cost (Fig 9), and :mod:`.restarts`: restarts of
  the small MLP trained at once, the best kept on validation;
* :mod:`.kmeans`: overparametrize-then-prune k-means (Fig 10);
* :mod:`.sawtooth`: a sawtooth small networks rarely learn (Fig 11);
* :mod:`.overparametrize_figures`: the figures and slider frames of chapter 5.
"""
