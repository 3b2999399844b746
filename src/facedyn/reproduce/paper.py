"""The papers' own numbers, quoted from the seed texts (``../shared/seeds``), with where each comes from.

Only numbers printed in the seeds are here. Fig. 3 / Fig. 4 of the DR paper are plots: the seeds hold
their captions and one sentence about their values, not the values. The TCAE notes show the paper's F1
tables as images only: no TCAE number is quoted.
"""

from __future__ import annotations

DR_AUS = ("AU06", "AU10", "AU12", "AU14", "AU17")

#: dr-paper.txt Table 1 (AU intensity on BP4D; the DR poster prints the same table): facedyn input -> row
TABLE1_SOURCE = "dr-paper.txt, Table 1 (AU intensity on BP4D, FERA 2015 partitions); also dr-poster.txt TABLE I"
TABLE1: dict[str, dict[str, tuple[str, tuple[float, ...]]]] = {
    # input: {metric: (paper row name, (AU6, AU10, AU12, AU14, AU17, Avg.))}
    "si": {"icc": ("HG-HMR [36]", (0.79, 0.80, 0.86, 0.54, 0.43, 0.68)),
           "mse": ("HG-HMR* [36]", (0.77, 0.92, 0.65, 1.57, 0.77, 0.94))},
    "pix2pix": {"icc": ("Pix2Pix* [15]", (0.59, 0.62, 0.68, 0.29, 0.31, 0.50)),
                "mse": ("Pix2Pix* [15]", (1.22, 1.31, 0.85, 1.90, 0.92, 1.24))},
    "unet_p": {"icc": ("Unet(P)* [19]", (0.55, 0.65, 0.65, 0.30, 0.26, 0.48)),
               "mse": ("Unet(P)* [19]", (1.53, 1.08, 1.07, 1.62, 0.95, 1.25))},
    "unet_mse": {"icc": ("Unet(MSE)*", (0.56, 0.63, 0.66, 0.29, 0.26, 0.48)),
                 "mse": ("Unet(MSE)*", (1.09, 1.55, 1.18, 2.12, 1.15, 1.42))},
    "sdr": {"icc": ("SDR+HG-HMR", (0.78, 0.80, 0.85, 0.47, 0.45, 0.67)),
            "mse": ("SDR+HG-HMR", (0.88, 0.84, 0.75, 1.90, 0.60, 0.99))},
    "mdr": {"icc": ("MDR+HG-HMR", (0.77, 0.83, 0.87, 0.62, 0.49, 0.72)),
            "mse": ("MDR+HG-HMR", (0.99, 0.79, 0.64, 1.34, 0.48, 0.85))},
}

#: dr-paper.txt Table 2 (SEMAINE): input -> (row, arousal PCC, arousal MSE, valence PCC, valence MSE)
TABLE2_SOURCE = "dr-paper.txt, Table 2 (valence/arousal on SEMAINE; CCC is not reported there)"
TABLE2: dict[str, tuple[str, float, float, float, float]] = {
    "si": ("SI+VGG *", 0.246, 0.056, 0.258, 0.084),
    "pix2pix": ("Pix2Pix*+VGG [15]", 0.091, 0.166, 0.088, 0.195),
    "unet_p": ("Unet(P)*+VGG [19]", 0.192, 0.125, 0.134, 0.172),
    "unet_mse": ("Unet(MSE)*+VGG", 0.063, 0.181, 0.082, 0.189),
    "sdr": ("SDR+VGG", 0.306, 0.078, 0.299, 0.082),
    "mdr": ("MDR+VGG", 0.335, 0.058, 0.316, 0.072),
}

RANKING_SOURCE = ("dr-paper.txt §4.3 / Fig. 4 (= dr-poster.txt Fig. 3): the per-setting values are a plot, not "
                  "in the seeds; the text says the DR 'yields around 80% accuracy even for the longest cases "
                  "(i.e. when ranking 19 frames with different strides)', achieves 'similar results to those given "
                  "by the RankSVM' (the upper bound), and that DI-target models 'degrade substantially'")
RANKING_DR = "≈ 80 (even at T = 9)"

#: FAb-Net variants of facedyn's ablation -> the row names of fabnet-slides.txt's tables
FABNET_VARIANTS: dict[str, str] = {"s1": "FAB-Net", "s1c": "FAB-Net w/ curric.",
                                   "s3c": "FAB-Net w/ curric., 3 source frames"}
FABNET_LANDMARKS_SOURCE = "fabnet-slides.txt, Table 1 (landmark error, % of inter-ocular distance)"
#: variant -> (300-W, MAFL)
FABNET_LANDMARKS: dict[str, tuple[float, float]] = {"s1": (6.31, 3.78), "s1c": (5.73, 3.49), "s3c": (5.71, 3.44)}
FABNET_POSE_SOURCE = "fabnet-slides.txt, Table 2 (pose MAE in degrees on the AFLW test set of KEPLER [26])"
#: variant -> (roll, pitch, yaw, MAE)
FABNET_POSE: dict[str, tuple[float, float, float, float]] = {
    "s1": (5.54, 7.84, 12.93, 8.77), "s1c": (5.33, 7.21, 11.34, 7.96), "s3c": (5.14, 7.13, 10.70, 7.65)}
FABNET_AU_SOURCE = "fabnet-slides.txt, Table 3 (AUC per AU on EmotioNet, %)"
FABNET_AUS = ("AU01", "AU02", "AU04", "AU05", "AU06", "AU09", "AU12", "AU17", "AU20", "AU25", "AU26")
#: variant -> AUC per AU of FABNET_AUS, then avg.
FABNET_AU: dict[str, tuple[float, ...]] = {
    "s1": (72.0, 68.9, 73.2, 69.4, 88.2, 78.6, 89.5, 71.0, 75.9, 81.4, 72.0, 76.4),
    "s1c": (73.4, 71.8, 75.3, 67.8, 90.4, 78.8, 91.9, 72.4, 74.5, 83.7, 73.3, 77.6),
    "s3c": (74.1, 72.3, 75.8, 68.8, 90.7, 81.8, 92.5, 73.7, 77.2, 83.6, 73.6, 78.6),
}
TCAE_SOURCE = ("tcae-notes-zh.txt: the TCAE paper's F1 tables (BP4D, DISFA) appear there as images only; no "
               "number is quoted here — compare with the paper's own tables")
