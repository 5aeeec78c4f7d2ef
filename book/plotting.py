"""The course's plotting style: one call at the top of a chapter makes every figure look alike."""

from __future__ import annotations

PALETTE = "colorblind"  # seaborn's palette that stays distinguishable for colour-blind readers


def use_course_style() -> None:
    """Apply the course look to matplotlib and seaborn: white grid, readable fonts, crisp PNGs."""
    import matplotlib as mpl
    import seaborn as sns

    sns.set_theme(context="notebook", style="whitegrid", palette=PALETTE)
    mpl.rcParams.update(
        {
            "figure.figsize": (7.5, 4.0),
            "figure.dpi": 110,
            "savefig.dpi": 110,
            "savefig.bbox": "tight",
            "axes.titleweight": "bold",
            "axes.titlesize": 12,
        }
    )
