"""Image-to-image refiners (CycleGAN family, AGGAN, CUT) and crop-refine-reinsert."""
