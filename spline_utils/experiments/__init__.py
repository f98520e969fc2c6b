"""Code that exists for one figure family of the book: the library stays apart from it.

* :mod:`.eb_training`: spline early-bird training against its baselines (chapter 4), and
  :mod:`.eb_training_report`: its summary table and accuracy-vs-training-FLOPs plot;
* :mod:`.spline_policy`: the spline pruning policy on the Fig 6 network, its figure and sliders (chapter 4);
* :mod:`.strategies`: five ways to train a small MLP, with their cost (Fig 9), and :mod:`.restarts`: restarts of
  the small MLP trained at once, the best kept on validation;
* :mod:`.kmeans`: overparametrize-then-prune k-means (Fig 10);
* :mod:`.sawtooth`: a sawtooth small networks rarely learn (Fig 11);
* :mod:`.overparametrize_figures`: the figures and slider frames of chapter 5.
"""
