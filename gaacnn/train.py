"""Training loop (paper Sec. IV-A), on CPU or GPU, single process or DDP under torchrun.

data (random crops) -> model.forward -> rate-distortion loss -> Adam (+ aux loss of the
factorized prior) -> checkpoints / CSV logs / validation on CID22 valid.

Guards, as in tensorflow/compression's bls2017: a non-finite loss stops the run with a
message and leaves the last good checkpoint; checkpoints are written atomically, so a
killed run resumes (``resume=True``) losing at most one checkpoint interval.
"""

from __future__ import annotations

import csv
import json
import math
import os
import signal
import time
from dataclasses import asdict
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from .data import RandomCrops, center_crops, dataset_paths
from .errors import GaacnnError
from .loss import rate_distortion
from .quantization import straight_through
from .registry import build_model
from .train_config import TrainConfig
from .weights import complete_state, load_into
from .widen import preset_named


class TrainingDiverged(GaacnnError):
    """The loss became NaN or infinite."""


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def budget_used(cfg: TrainConfig, step: int, elapsed: float = 0.0) -> float:
    """How far a run is through its budget: steps, or wall time when ``max_minutes`` runs out first."""
    done = step / cfg.steps
    if cfg.max_minutes:
        done = max(done, elapsed / (cfg.max_minutes * 60))
    return done


def lr_at(cfg: TrainConfig, step: int, elapsed: float = 0.0, resumed_at: int = 0) -> float:
    """Learning rate at ``step``: linear warm-up, a constant stable phase, then (``decay``) a linear
    fall to lr / 100 over the end of the budget (steps, or wall time for a run given ``max_minutes``,
    so a timed run still decays). ``milestones`` adds the authors' 10x drops (Sec. IV-A)."""
    done = budget_used(cfg, step, elapsed)
    lr = cfg.lr * 0.1 ** sum(done >= m for m in cfg.milestones)
    if cfg.warmup and step < cfg.warmup:
        lr *= (step + 1) / cfg.warmup
    if cfg.rewarm and step - resumed_at < cfg.rewarm:
        lr *= (step - resumed_at + 1) / cfg.rewarm
    if cfg.decay and done > 1 - cfg.decay:
        lr *= max(0.01, (1 - done) / cfg.decay)
    return lr


def main_parameters(model) -> list[torch.nn.Parameter]:
    """Everything the rate-distortion loss trains: all but the factorized prior's quantiles, which the
    aux loss trains with its own optimizer (and whose gradients must not enter the main clipping)."""
    return [p for n, p in model.named_parameters() if not n.endswith(".quantiles") and p.requires_grad]


def _dist_info() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def hardware(device: torch.device, world: int = 1) -> str:
    """What a run trains on, recorded in its checkpoints and in the manifest."""
    if device.type == "cuda":
        return f"{world} x {torch.cuda.get_device_name(device)}"
    return f"cpu ({os.cpu_count()} cores, {torch.get_num_threads()} torch threads, {world} process(es))"


def _atomic_save(obj, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def claim_folder(out: Path) -> Path:
    """One writer per run folder: refuse to start while another live process trains into ``out``
    (two writers would interleave their logs and overwrite each other's checkpoints)."""
    lock = out / "LOCK"
    if lock.exists():
        try:
            pid = int(lock.read_text().strip() or 0)
        except ValueError:
            pid = 0
        if pid and pid != os.getpid() and _alive(pid):
            raise GaacnnError(f"{out} is being trained by process {pid}; wait for it or stop it "
                              f"(delete {lock} if that process is not a training run)")
    lock.write_text(str(os.getpid()))
    return lock


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _optimizers(model, cfg: TrainConfig):
    aux = [p for n, p in model.named_parameters() if n.endswith(".quantiles")]
    return torch.optim.Adam(main_parameters(model), lr=cfg.lr), torch.optim.Adam(aux, lr=cfg.aux_lr)


@torch.no_grad()
def validate(model, images: torch.Tensor, cfg: TrainConfig, device: torch.device) -> dict[str, float]:
    """Mean loss / bpp (from likelihoods) / PSNR over validation crops, one image at a time."""
    was_training = model.training
    model.eval()
    sums: dict[str, float] = {}
    for x in images:
        terms = rate_distortion(model(x[None].to(device)), x[None].to(device), cfg.lmbda, cfg.metric)
        for k, v in terms.items():
            sums[k] = sums.get(k, 0.0) + float(v)
    model.train(was_training)
    n = len(images)
    out = {k: v / n for k, v in sums.items()}
    out["psnr"] = -10 * math.log10(max(out["mse"], 1e-10))
    return out


class CsvLog:
    def __init__(self, path: Path, fields: list[str], append: bool) -> None:
        self.path, self.fields = path, fields
        if not (append and path.exists()):
            with open(path, "w", newline="") as f:
                csv.writer(f).writerow(fields)

    def write(self, row: dict) -> None:
        with open(self.path, "a", newline="") as f:
            csv.writer(f).writerow([row.get(k, "") for k in self.fields])


class _StopRequest:
    """SIGTERM / SIGINT during training: finish the step, write a checkpoint, return (resumable)."""

    def __init__(self) -> None:
        self.requested = False
        self._old = {}
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                self._old[sig] = signal.signal(sig, self._request)
            except ValueError:  # not the main thread: leave signals alone
                pass

    def _request(self, signum, frame) -> None:
        self.requested = True

    def release(self) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)


def segment(device: torch.device, world: int, from_step: int, to_step: int, seconds: float, batch: int) -> dict:
    """One stretch of a run on one machine: what it ran on, at what batch (a comparison of equal steps,
    the ablation's, must also compare equal batches) and what it cost."""
    workers = world if device.type == "cuda" else world * torch.get_num_threads()
    return {"hardware": hardware(device, world), "kind": device.type, "workers": workers, "batch": batch,
            "from_step": from_step, "to_step": to_step, "seconds": round(seconds, 1)}


def run_history(out: Path | str, step: int, segments: list[dict], parent: dict | None) -> dict:
    """What a checkpoint records of how it was made: its segments, the run it started from (that
    run's history at the moment of the branch) and totals over both (steps, wall time, CPU core-hours,
    GPU-hours). Shipping reads the totals."""
    totals = {"steps": step, "wall_seconds": 0.0, "cpu_hours": 0.0, "gpu_hours": 0.0, "untracked_wall_seconds": 0.0}
    for seg in segments:
        totals["wall_seconds"] += seg["seconds"]
        totals["cpu_hours" if seg["kind"] == "cpu" else "gpu_hours"] += seg["seconds"] * seg["workers"] / 3600
    if parent:
        for k in totals:
            totals[k] += parent["totals"].get(k, 0)
    totals = {k: round(v, 6) if isinstance(v, float) else v for k, v in totals.items()}
    return {"run": str(out), "step": step, "segments": segments, "parent": parent, "totals": totals}


def history_of(path: str | Path) -> dict | None:
    """The history a checkpoint (or a weights file's meta) records. A shipped file from before
    histories existed gets one from its manifest entry: its steps, and its wall time as untracked
    (those runs did not record their threads, so their CPU-hours are unknown). None otherwise."""
    obj = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(obj, dict):
        return None
    found = obj.get("history") or obj.get("meta", {}).get("history")
    if found:
        return found
    from . import manifest

    for entry in manifest.entries():
        if (manifest.WEIGHTS_DIR / entry["file"]).resolve() == Path(path).resolve():
            wall = float(entry.get("wall_seconds", 0.0))
            return {"run": f"weights/{entry['file']}", "step": entry["steps"], "segments": [], "parent": None,
                    "totals": {"steps": entry["steps"], "wall_seconds": wall, "cpu_hours": 0.0, "gpu_hours": 0.0,
                               "untracked_wall_seconds": wall}}
    return None


def restore_optimizers(path: str | Path, opt, aux_opt, device: torch.device) -> None:
    """Adam state of a checkpoint into fresh optimizers: a cooldown continues the trunk's moments
    instead of restarting them (the moments may be stored in half precision; Adam casts them back)."""
    state = torch.load(path, map_location=device, weights_only=False)
    if "opt" not in state:
        raise GaacnnError(f"{path} holds no optimizer state: init_optimizer needs a training checkpoint")
    opt.load_state_dict(state["opt"])
    aux_opt.load_state_dict(state["aux_opt"])


TRAIN_FIELDS = ["step", "loss", "bpp", "mse", "psnr", "ms-ssim", "aux", "lr", "seconds"]
VAL_FIELDS = ["step", "loss", "bpp", "mse", "psnr", "ms-ssim"]


def train(cfg: TrainConfig, resume: bool = False, progress: bool = True) -> dict:
    """Run (or resume) one training job; returns a summary with the last validation."""
    rank, world = _dist_info()
    lock = None
    if rank == 0:
        Path(cfg.out).mkdir(parents=True, exist_ok=True)
        lock = claim_folder(Path(cfg.out))
    try:
        return _train(cfg, resume, progress, rank, world)
    finally:
        if lock is not None:
            lock.unlink(missing_ok=True)


def _train(cfg: TrainConfig, resume: bool, progress: bool, rank: int, world: int) -> dict:
    if cfg.patch % 64:
        raise GaacnnError(f"patch size {cfg.patch} is not a multiple of 64")
    if cfg.batch % world:
        raise GaacnnError(f"batch {cfg.batch} does not split over {world} processes")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = pick_device(cfg.device)
    if world > 1 and device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    out = Path(cfg.out)
    ckpt_path = out / "checkpoint.pt"

    torch.manual_seed(cfg.seed)
    preset = preset_named(cfg.preset) if cfg.arch == "gaacnn" else cfg.preset  # a widened one too
    model = build_model(cfg.arch, preset, cfg.context).to(device)
    straight_through(model, cfg.ste)
    resuming = resume and ckpt_path.exists()
    if cfg.init and not resuming:  # a resumed run has its weights; its init file may be gone since
        load_into(model, cfg.init, strict=False)
    opt, aux_opt = _optimizers(model, cfg)
    main = main_parameters(model)
    # The run it started from, as that run stood at the branch; a resumed run keeps the one it recorded
    # (the init file may have been replaced since, for instance by a shipped model of the same name).
    parent = history_of(cfg.init) if cfg.init and not resuming else None
    if cfg.init and cfg.init_optimizer and not resuming:
        restore_optimizers(cfg.init, opt, aux_opt, device)
    step, elapsed, segments = 0, 0.0, []
    if resume and ckpt_path.exists():
        state = torch.load(ckpt_path, map_location=device, weights_only=False)
        model.load_state_dict(complete_state(model, state["model"]))
        opt.load_state_dict(state["opt"])
        aux_opt.load_state_dict(state["aux_opt"])
        step, elapsed = state["step"], state["elapsed"]
        segments = state.get("history", {}).get("segments", [])
        parent = state.get("history", {}).get("parent")
        torch.set_rng_state(state["rng"].cpu())  # map_location moved it to the device
    elif resume and rank == 0:
        print(f"no checkpoint in {out}: starting from step 0")
    if rank == 0:
        (out / "config.json").write_text(json.dumps(asdict(cfg), indent=2))

    net = model
    if world > 1:
        # The factorized prior's quantiles are trained by the aux loss outside forward(): DDP must
        # not hook them; their gradients are averaged by hand below.
        quantiles = [n for n, _ in model.named_parameters() if n.endswith(".quantiles")]
        DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(model, quantiles)
        # find_unused_parameters: the first attention module of each transform has no skip input,
        # so its gamma gets no gradient.
        net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None,
                                      find_unused_parameters=True)
    model.train(cfg.model_mode == "train")

    per_rank = cfg.batch // world
    data = RandomCrops(dataset_paths(cfg.train_set), cfg.patch, cfg.seed, device=device if cfg.preload else None)
    # val_every 0: no validation in the loop (a GPU continuation: its snapshots are validated afterwards)
    validating = rank == 0 and cfg.val_every > 0
    val_images = center_crops(dataset_paths(cfg.val_set)[: cfg.val_images], cfg.val_crop) if validating else None
    log = CsvLog(out / "train.csv", TRAIN_FIELDS, append=resume) if rank == 0 else None
    val_log = CsvLog(out / "val.csv", VAL_FIELDS, append=resume) if rank == 0 else None
    use_bf16 = device.type == "cuda"

    first_step, first_elapsed = step, elapsed

    def checkpoint() -> None:
        if rank == 0:
            here = segment(device, world, first_step, step, elapsed - first_elapsed, cfg.batch)
            _atomic_save(
                {"model": model.state_dict(), "opt": opt.state_dict(), "aux_opt": aux_opt.state_dict(),
                 "step": step, "elapsed": elapsed, "rng": torch.get_rng_state(), "config": asdict(cfg),
                 "hardware": hardware(device, world), "finished": finished,
                 "history": run_history(out, step, [*segments, here] if step > first_step else segments, parent)},
                ckpt_path,
            )

    bar = tqdm(total=cfg.steps, initial=step, disable=not progress or rank != 0, desc=Path(cfg.out).name)
    last_val: dict = {}
    finished = budget_used(cfg, step, elapsed) >= 1.0
    started = time.time() - elapsed
    stop = _StopRequest()
    session_start = time.time()
    while not finished and not stop.requested:
        t0 = time.time()
        first = step * cfg.batch + rank * per_rank
        x = torch.stack([data[first + j] for j in range(per_rank)]).to(device)
        for group in opt.param_groups:
            group["lr"] = lr_at(cfg, step, elapsed, first_step)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
            out_dict = net(x)
        terms = rate_distortion(out_dict, x, cfg.lmbda, cfg.metric)
        loss = terms["loss"]
        if world > 1:
            check = loss.detach().clone()
            dist.all_reduce(check)
            finite = math.isfinite(float(check))
        else:
            finite = math.isfinite(float(loss.detach()))
        if not finite:
            bar.close()
            raise TrainingDiverged(
                f"loss is {float(loss.detach())} at step {step}; the last good checkpoint is {ckpt_path} "
                "(lower the learning rate or lambda, then resume)"
            )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.clip:
            torch.nn.utils.clip_grad_norm_(main, cfg.clip)
        opt.step()
        aux = model.aux_loss()
        aux_opt.zero_grad(set_to_none=True)
        aux.backward()
        if world > 1:
            for group in aux_opt.param_groups:
                for p in group["params"]:
                    dist.all_reduce(p.grad)
                    p.grad /= world
        aux_opt.step()
        step += 1
        elapsed = time.time() - started
        if world > 1 and cfg.max_minutes:  # every process must stop at the same step
            clock = torch.tensor([elapsed], dtype=torch.float64, device=device)
            dist.broadcast(clock, 0)
            elapsed = float(clock)
        finished = budget_used(cfg, step, elapsed) >= 1.0
        if world > 1:
            for k in ("loss", "bpp", "mse"):
                t = terms[k].detach().clone()
                dist.all_reduce(t)
                terms[k] = t / world
            terms["psnr"] = -10 * torch.log10(terms["mse"].clamp_min(1e-10))
        if rank == 0:
            row = {k: f"{float(v.detach()):.6g}" for k, v in terms.items()}
            row.update(step=step, aux=f"{float(aux.detach()):.4g}", lr=f"{opt.param_groups[0]['lr']:.3g}",
                       seconds=f"{elapsed:.1f}")
            if step % cfg.log_every == 0 or finished:
                log.write(row)
            bar.set_postfix(loss=row["loss"], bpp=row["bpp"], psnr=row["psnr"], s_step=f"{time.time() - t0:.2f}")
            bar.update(1)
            if cfg.val_every and (step % cfg.val_every == 0 or finished):
                last_val = validate(model, val_images, cfg, device)
                val_log.write({"step": step, **{k: f"{v:.6g}" for k, v in last_val.items()}})
        if cfg.session_minutes and time.time() - session_start > 60 * cfg.session_minutes:
            stop.requested = True
        if step % cfg.ckpt_every == 0 or finished or stop.requested:
            checkpoint()
        if finished:
            break
    stop.release()
    bar.close()
    if stop.requested and rank == 0:
        print(f"stopped on request at step {step}; resume with --resume", flush=True)
    if rank == 0 and finished:
        model.update(force=True)
    here = segment(device, world, first_step, step, elapsed - first_elapsed, cfg.batch)
    history = run_history(out, step, [*segments, here] if step > first_step else segments, parent)
    return {"step": step, "elapsed": elapsed, "val": last_val, "model": model, "finished": finished,
            "history": history}
