"""The launcher's form: what it shows when a past run's parameters are loaded."""

from __future__ import annotations


def test_loading_an_older_runs_parameters_resets_what_it_does_not_record(qtbot):
    """A run file from before a parameter existed leaves it at its default in the launcher,
    not at whatever the form showed last (a stale skip=on would change the rerun)."""
    from labpnn.gui.parameter_form import ParameterForm
    from labpnn.procedures.training.pat import TrainPAT

    form = ParameterForm()
    qtbot.addWidget(form)
    form.set_procedure(TrainPAT)
    form.set_text("skip", "on")
    form.set_text("lr", "0.01")
    form.set_values({"epochs": 5, "lr": 0.002})  # recorded before `skip` existed
    values = form.values()
    assert (values["epochs"], values["lr"], values["skip"]) == (5, 0.002, "auto")
