"""Evaluation of motion prediction and rendering on clips the model never saw (`gid eval`).

metrics.py: magnitude-map Spearman, log-power spectrum error, loop seam error, PSNR, SSIM.
baselines.py: zero motion and the training set's mean spectrum at every pixel.
photo_score.py: ROC AUC of a motion-magnitude map against should-move / still masks of photos.
run.py: the driver that reads clips, runs the model and the baselines and prints one table.
"""
