"""TCAE: the Twin-Cycle Autoencoder (Li et al., CVPR 2019): AU and head-pose motion between two frames.

* :mod:`~facedyn.tcae.losses`: Eq. 1–7 as small pure functions;
* :mod:`~facedyn.tcae.model`: the network (encoder to phi/psi, twin displacement decoders), the config
  and the registered method ``tcae``;
* :mod:`~facedyn.tcae.curriculum`: the growing source–target gap;
* :mod:`~facedyn.tcae.figures`: the reconstruction / displacement figure of a run;
* :mod:`~facedyn.tcae.separation`: do the twins separate? (synthetic pairs differing in one factor).
"""
