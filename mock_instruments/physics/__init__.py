"""Seeded, deterministic wave physics behind the simulated benches.

Each module models one physical system and knows nothing about drivers, transports or
clocks: it is handed times, seeds and frame indices and returns fields, intensities,
counts or S-parameters. The worlds in ``labpnn.mock_instruments`` wire it to the
transports and SDK-shaped back-ends the real drivers talk to.

* :mod:`.optics` - SLM pixels -> input field -> scattering medium or multimode fibre
  (with drift) -> camera-plane field;
* :mod:`.lc_settling` - the SLM's liquid-crystal response between two frames;
* :mod:`.sensor` - a camera sensor: electrons, shot and read noise, gain, quantisation
  and saturation;
* :mod:`.acoustics` - a 2-D cavity with scatterers and nonlinear membranes;
* :mod:`.microwave` - a reverberant cavity with a programmable metasurface;
* :mod:`.parallel` - a shared thread pool for bulk array work, deterministic per chunk.

Import the module you need; this package imports nothing, so each bench stays cheap.
"""
