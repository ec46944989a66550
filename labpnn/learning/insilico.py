"""In-silico training, the baseline: train entirely on the digital twins, then deploy.

The network of :class:`~labpnn.learning.network.HybridNetwork` is trained with the twins in
place of the physical layers (no hardware queries during training, only the twin data), and
evaluated on the physical layers. It works only as long as the twins match the hardware; the gap
to PAT under twin mismatch or drift is what S7 and S9 measure. With ``standardise``, the
outputs' statistics are learnt from the twins' outputs in training (the only training
measurements there are) and applied unchanged to the measurements at evaluation.
"""

from __future__ import annotations

import torch
from torch import Tensor

from labpnn.learning.pat import PhysicsAwareTrainer

__all__ = ["InSilicoTrainer"]


class InSilicoTrainer(PhysicsAwareTrainer):
    """Same network, costs and interface as PAT; training runs on the twins alone."""

    def _training_step(self, k: int, h: Tensor) -> Tensor:
        return self.twins[k](h)

    def twin_logits(self, x: Tensor) -> Tensor:
        """Class scores of the network on the twins (what in-silico training believes)."""
        x = self._check_width(x)
        with torch.no_grad():
            return self.network(x, self._training_step)
