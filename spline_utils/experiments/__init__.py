"""Code that exists for one figure family of the book: the library stays apart from it.

* :mod:`.eb_training`: spline early-bird training against its baselines (chapter 4), and
  :mod:`.eb_training_report`: its summary table and accuracy-vs-training-FLOPs plot;
* :mod:`.strategies`: four ways to train a small MLP, with their cost (Fig 9);
* :mod:`.kmeans`: overparametrize-then-prune k-means (Fig 10);
* :mod:`.sawtooth`: a sawtooth small networks rarely learn (Fig 11).
"""
