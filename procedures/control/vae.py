"""control-vae: the variational framework (Rahmani, Psaltis, Moser 2021) on the bench.

The forward model is a VAE over the SLM patterns with a generator that predicts the
camera image from the latent (:mod:`labpnn.control.vae`: latent size and β are
parameters); the actor is trained through it. The outer loop, the records, the budget and
the checkpoints are control-actor's: round 0 measures random probes, each iteration
evaluates the actor on the held-out targets, measures its patterns for training digits,
appends them, retrains the VAE and then the actor.
"""

from __future__ import annotations

from labpnn.control.loop import ControlLoop
from labpnn.control.vae import VAEControl
from labpnn.procedure import FloatParameter, IntegerParameter
from labpnn.procedures.control.actor import LearnedControlProcedure


class ControlVAE(LearnedControlProcedure):
    """Project target images with an actor network trained through a VAE forward model.

    Rahmani, Psaltis and Moser (2021); camera intensities only. See the module docstring.
    """

    name = "control-vae"
    controller = VAEControl

    latent_size = IntegerParameter(
        "VAE latent size (≥ 2 × target pixels represents the medium fully)",
        default=512, minimum=2, maximum=65536,
    )  # fmt: skip
    beta = FloatParameter(
        "β (weight of the output prediction against the VAE ELBO)",
        default=1e5, minimum=0.0, maximum=1e12,
    )  # fmt: skip
    vae_epochs = IntegerParameter("VAE epochs per iteration", default=5, minimum=0,
                                  maximum=100000)  # fmt: skip
    vae_lr = FloatParameter("VAE learning rate", default=1e-4, minimum=1e-8, maximum=1.0)

    def make_controller(self, n_in: int, shape: tuple[int, int]) -> ControlLoop:
        return VAEControl(
            n_in,
            shape,
            self.training_targets(shape),
            self.loop_config(),
            latent_size=int(self.latent_size),
            beta=float(self.beta),
            vae_epochs=int(self.vae_epochs),
            vae_lr=float(self.vae_lr),
        )
