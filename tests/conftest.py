import os

os.environ.setdefault("SPLINE_BOOK_STATIC", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
