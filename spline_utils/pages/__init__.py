"""What only the book's pages need: the chapter preamble, sliders (static frames and live controls)."""
