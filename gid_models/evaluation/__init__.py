"""Evaluation of motion prediction and rendering on clips the model never saw (`gid eval`).

metrics.py: magnitude-map Spearman, log-power spectrum error, loop seam error, PSNR, SSIM.
baselines.py: zero motion and the training set's mean spectrum at every pixel.
run.py: the driver that reads clips, runs the model and the baselines and prints one table.
"""
