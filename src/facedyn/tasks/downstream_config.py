"""The settings of the downstream benchmark (:mod:`facedyn.tasks.downstream`, ``facedyn eval downstream``): the
one source of its defaults, importable without torch so that the CLI starts fast."""

from __future__ import annotations

from dataclasses import dataclass

from facedyn.errors import ConfigError

__all__ = ["DEFAULT_KINDS", "FEATURE_KINDS", "HEADS", "KINDS", "NET_KINDS", "REFERENCE", "DownstreamConfig", "names"]


def names(text: str) -> list[str]:
    """Comma-separated names, stripped, empty ones dropped."""
    return [c.strip() for c in text.split(",") if c.strip()]


#: Networks trained from scratch on the labelled frames: kind -> (model, input parts).
#: ``mdr-ft``: the MDR of the first DR with the DR network trained along (its lr a tenth of the CNN's), not frozen.
NET_KINDS: dict[str, tuple[str, str]] = {"si": ("cnn", "image"), "si-hg": ("hg", "image"), "sdr": ("cnn", "dr"),
                                          "mdr": ("cnn", "image+dr"), "mdr-ft": ("cnn", "image+dr-ft")}
#: Frozen features probed by heads: kind -> (which run option, weights, PCA). The DR is average-pooled to 16 x 16
#: (768 values) instead of reduced by PCA: the leading principal components of person-centred DRs are not the
#: AUs' (measured on the real proxies, 10 labelled people: ridge ICC 0.008 on 128 PCs, 0.253 pooled).
FEATURE_KINDS: dict[str, tuple[str, str, bool]] = {
    "fabnet": ("fabnet", "best", False), "tcae": ("tcae", "best", False), "dr": ("dr", "best", False),
    "fabnet-init": ("fabnet", "init", False), "tcae-init": ("tcae", "init", False), "pixels": ("", "", True)}
KINDS = (*NET_KINDS, *FEATURE_KINDS)
#: The kinds scored by default (``mdr-ft`` costs about three CNN trainings: asked for by name).
DEFAULT_KINDS = tuple(k for k in KINDS if k != "mdr-ft")
HEADS = ("linear", "mlp")
REFERENCE = "si"


@dataclass
class DownstreamConfig:
    """Every default of ``facedyn eval downstream`` (the CLI reads them from here)."""

    budgets: str = "3,5,10,20,all"
    repeats: int = 3
    kinds: str = ",".join(DEFAULT_KINDS)
    heads: str = ",".join(HEADS)
    labels: str = "store"
    label_columns: str = ""
    presence: float = 1.0
    test_split: str = "test"
    folds: bool = False
    frames_per_person: int = 100
    dr: str = "dr-t5"
    fabnet: str = "fabnet"
    tcae: str = "tcae"
    box_data: str = ""
    steps: int = 300
    batch_size: int = 32
    width: int = 16
    lr: float = 1e-3
    pca_dim: int = 128
    person_norm: bool = True
    allow_seen: bool = False
    n_boot: int = 1000
    seed: int = 0

    def kind_list(self) -> list[str]:
        """The kinds to score, heads expanded (``fabnet/linear``, ...), SI first."""
        kinds = names(self.kinds)
        bad = [k for k in kinds if k not in KINDS]
        if bad:
            raise ConfigError(f"--kinds: unknown {', '.join(bad)}; choose from {', '.join(KINDS)}")
        heads = names(self.heads)
        badh = [h for h in heads if h not in HEADS]
        if badh or (not heads and any(k in FEATURE_KINDS for k in kinds)):
            raise ConfigError(f"--heads must be some of {', '.join(HEADS)}, got {self.heads!r}")
        out = [k for k in kinds if k in NET_KINDS]
        out += [f"{k}/{h}" for k in kinds if k in FEATURE_KINDS for h in heads]
        return sorted(out, key=lambda k: k != REFERENCE)

    def budget_list(self) -> list[int]:
        """Budgets in labelled people; ``all`` is 0."""
        out = []
        for b in names(self.budgets):
            if b == "all":
                out.append(0)
                continue
            try:
                v = int(b)
            except ValueError:
                raise ConfigError(f"--budgets: {b!r} is not a number of people or 'all'") from None
            if v < 2:
                raise ConfigError(f"--budgets: {v} labelled people; give at least 2 (a head's inner CV and the "
                                  "input standardisation need two people)")
            out.append(v)
        if not out:
            raise ConfigError("--budgets: give at least one budget (e.g. 3,5,10,all)")
        return sorted(set(out), key=lambda v: v or 10**9)

    def check(self) -> None:
        """ConfigError for a setting no run could use, before any work."""
        self.kind_list()
        self.budget_list()
        for name, v, lo in (("--repeats", self.repeats, 1), ("--steps", self.steps, 1),
                            ("--batch-size", self.batch_size, 2), ("--frames-per-person", self.frames_per_person, 1),
                            ("--pca-dim", self.pca_dim, 1), ("--n-boot", self.n_boot, 10), ("--width", self.width, 1)):
            if v < lo:
                raise ConfigError(f"{name} must be >= {lo}, got {v}")
        if self.labels not in ("store", "proxies"):
            raise ConfigError(f"--labels must be store or proxies, got {self.labels!r}")
        if not names(self.dr) and any(k.split("/")[0] in ("sdr", "mdr", "mdr-ft", "dr") for k in self.kind_list()):
            raise ConfigError("--dr: give the DR model(s) for the sdr, mdr and dr kinds (e.g. dr-t5)")
