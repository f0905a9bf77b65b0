"""Makes tests/fixtures/samplers/: diffusers scheduler schedules and whole step sequences.

Run with the reference venv (tools/reference/setup-venv.sh):
    tools/reference/.venv/bin/python tools/reference/make_sampler_fixtures.py

Writes
  trajectories.safetensors  for each run <name>: <name>.sigmas [N+1], <name>.timesteps [N],
                            <name>.samples [N+1, 120] (the sample fed to step i, then the result),
                            <name>.model_outputs [N, 120] (what the "model" returned at step i,
                            values exactly representable in the run's model dtype),
                            <name>.x0 [N, 120] (the scheduler's converted x0 prediction, when it has one)
  schedules.safetensors     <scheduler>.n<N>.s<shift>.sigmas / .timesteps, and karras/exponential/beta
  manifest.json             the parameters of every run and schedule

The model is a fixed function of the current sample plus seeded noise, so the trajectory is
nontrivial; reel replays the recorded outputs and compares every intermediate sample.
"""
import json
import math
from pathlib import Path

import mpmath
import numpy as np
import torch
from diffusers import DPMSolverMultistepScheduler, FlowMatchEulerDiscreteScheduler, UniPCMultistepScheduler
from safetensors.torch import save_file

OUT = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "samplers"
SHAPE = (1, 4, 2, 3, 5)
DTYPES = {"f32": torch.float32, "bf16": torch.bfloat16}


def make_scheduler(kind, shift, solver_type="bh2", order=2):
    if kind == "unipc":
        return UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=shift,
                                       solver_type=solver_type, solver_order=order)
    if kind == "euler":
        return FlowMatchEulerDiscreteScheduler(shift=shift)
    if kind == "dpm":
        return DPMSolverMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=shift,
                                           solver_order=order)
    raise ValueError(kind)


def model_output(x, step, gen, dtype):
    """A nontrivial 'velocity': a function of the current sample plus seeded noise, rounded to dtype."""
    noise = torch.randn(x.shape, generator=gen, dtype=torch.float32)
    v = -0.7 * x + 0.4 * torch.tanh(2.0 * x) + 0.5 * noise + 0.05 * step
    return v.to(dtype)


def run(kind, steps, shift, dtype_name, seed, solver_type="bh2", order=2):
    sched = make_scheduler(kind, shift, solver_type, order)
    sched.set_timesteps(steps)
    sched.set_begin_index(0)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(SHAPE, generator=gen, dtype=torch.float32)  # fp32 latents, as in the Wan pipeline
    samples, outputs, x0s = [x.float().flatten()], [], []
    for i, t in enumerate(sched.timesteps):
        v = model_output(x.float(), i, gen, DTYPES[dtype_name])
        x = sched.step(v, t, x).prev_sample
        samples.append(x.float().flatten())
        outputs.append(v.float().flatten())
        if kind in ("unipc", "dpm"):
            x0s.append(sched.model_outputs[-1].float().flatten())
    tensors = {
        "sigmas": sched.sigmas.float().clone(),
        "timesteps": sched.timesteps.float().clone(),
        "samples": torch.stack(samples),
        "model_outputs": torch.stack(outputs),
    }
    if x0s:
        tensors["x0"] = torch.stack(x0s)
    return tensors


RUNS = [
    # name, scheduler, steps, shift, model dtype, seed, solver_type, order
    ("unipc_bh2_o2_n10_f32", "unipc", 10, 3.0, "f32", 1, "bh2", 2),
    ("unipc_bh2_o2_n50_f32", "unipc", 50, 3.0, "f32", 2, "bh2", 2),
    ("unipc_bh2_o2_n10_bf16", "unipc", 10, 3.0, "bf16", 3, "bh2", 2),
    ("unipc_bh2_o2_n50_bf16", "unipc", 50, 5.0, "bf16", 4, "bh2", 2),
    ("unipc_bh2_o1_n10_f32", "unipc", 10, 3.0, "f32", 5, "bh2", 1),
    ("unipc_bh2_o3_n10_f32", "unipc", 10, 3.0, "f32", 6, "bh2", 3),
    ("unipc_bh2_o3_n50_f32", "unipc", 50, 3.0, "f32", 7, "bh2", 3),
    # diffusers' bh1 ends in NaN when the final sigma is 0 (alpha_t * B_h * 0 with B_h = -inf):
    # the tests compare every step but the last, which reel defines as x0 (like bh2).
    ("unipc_bh1_o2_n10_f32", "unipc", 10, 3.0, "f32", 8, "bh1", 2),
    ("unipc_bh1_o3_n10_f32", "unipc", 10, 3.0, "f32", 9, "bh1", 3),
    ("euler_n10_f32", "euler", 10, 3.0, "f32", 10, None, 1),
    ("euler_n50_bf16", "euler", 50, 3.0, "bf16", 11, None, 1),
    ("euler_n10_bf16", "euler", 10, 5.0, "bf16", 12, None, 1),
    ("dpm_n10_f32", "dpm", 10, 3.0, "f32", 13, None, 2),
    ("dpm_n50_f32", "dpm", 50, 3.0, "f32", 14, None, 2),
    ("dpm_n10_bf16", "dpm", 10, 5.0, "bf16", 15, None, 2),
]

SCHEDULE_STEPS = [1, 2, 10, 50]
SCHEDULE_SHIFTS = [1.0, 3.0, 5.0, 16.0]


def beta_ppf(p, a, b):
    """Inverse CDF of Beta(a, b) in 50-digit arithmetic (scipy is not in the reference env)."""
    mpmath.mp.dps = 50
    if p <= 0:
        return 0.0
    if p >= 1:
        return 1.0
    f = lambda x: mpmath.betainc(a, b, 0, x, regularized=True) - p
    return float(mpmath.findroot(f, (mpmath.mpf("1e-40"), mpmath.mpf(1) - mpmath.mpf("1e-40")), solver="anderson"))


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    manifest = {"shape": list(SHAPE), "runs": [], "schedules": [], "sigma_shapes": []}
    traj = {}
    for name, kind, steps, shift, dtype_name, seed, solver_type, order in RUNS:
        tensors = run(kind, steps, shift, dtype_name, seed, solver_type or "bh2", order)
        for k, v in tensors.items():
            traj[f"{name}.{k}"] = v.contiguous()
        manifest["runs"].append({"name": name, "scheduler": kind, "steps": steps, "shift": shift,
                                 "model_dtype": dtype_name, "solver_type": solver_type, "order": order,
                                 "has_x0": "x0" in tensors})
    save_file(traj, str(OUT / "trajectories.safetensors"))

    sched_tensors = {}
    for kind in ("unipc", "euler", "dpm"):
        for steps in SCHEDULE_STEPS:
            for shift in SCHEDULE_SHIFTS:
                s = make_scheduler(kind, shift)
                s.set_timesteps(steps)
                key = f"{kind}.n{steps}.s{shift:g}"
                sched_tensors[key + ".sigmas"] = s.sigmas.float().clone()
                sched_tensors[key + ".timesteps"] = s.timesteps.float().clone()
                manifest["schedules"].append({"key": key, "scheduler": kind, "steps": steps, "shift": shift})

    # Sigma shapes as diffusers' _convert_to_karras / _convert_to_exponential compute them
    # (float64), and its _convert_to_beta formula with an exact Beta inverse CDF.
    helper = make_scheduler("unipc", 1.0)
    for sigma_min, sigma_max in ((0.0292, 14.6146), (0.002, 1.0)):
        for steps in (1, 7, 25):
            in_sigmas = np.array([sigma_max, sigma_min])
            karras = helper._convert_to_karras(in_sigmas=in_sigmas, num_inference_steps=steps)
            expo = helper._convert_to_exponential(in_sigmas=in_sigmas, num_inference_steps=steps)
            beta = np.array([sigma_min + beta_ppf(float(t), 0.6, 0.6) * (sigma_max - sigma_min)
                             for t in 1 - np.linspace(0, 1, steps)])
            for shape_name, values in (("karras", karras), ("exponential", expo), ("beta", beta)):
                key = f"{shape_name}.n{steps}.min{sigma_min:g}.max{sigma_max:g}"
                sched_tensors[key] = torch.from_numpy(np.asarray(values, dtype=np.float64))
                manifest["sigma_shapes"].append({"key": key, "shape": shape_name, "steps": steps,
                                                 "sigma_min": sigma_min, "sigma_max": sigma_max})
    save_file(sched_tensors, str(OUT / "schedules.safetensors"))
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    print(f"wrote {len(traj)} trajectory tensors and {len(sched_tensors)} schedule tensors to {OUT}")


if __name__ == "__main__":
    main()
