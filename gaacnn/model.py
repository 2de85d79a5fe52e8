"""GAACNN as a CompressAI ``CompressionModel`` (paper Fig. 1).

Data flow:
    x -> g_a -> y -> h_a -> z -> [factorized prior: bits] -> z_hat -> h_s -> hyper parameters
    y_hat = round(y) -> [masked 3-D context C_m + hyper -> mixture of 3 Gaussians: bits] -> g_s -> x_hat

``context=True`` is the paper's model. ``context=False`` drops C_m (the ablation, and a fast
configuration): h_s's 2M channels are then the scales and means of one Gaussian per element,
coded with CompressAI's ``GaussianConditional`` scale table, as in its ``MeanScaleHyperprior``.
"""

from __future__ import annotations

import struct
from contextlib import contextmanager

import torch
from compressai.ans import BufferedRansEncoder
from compressai.entropy_models import EntropyBottleneck, GaussianConditional, GaussianMixtureConditional
from compressai.models import CompressionModel
from torch import Tensor

from .acnn import ACBlock
from .bitstream import BitstreamError
from .context import (
    MIXTURES,
    EntropyParameters,
    MaskedConv3d,
    Wavefront,
    context_taps_weight,
    entropy_parameters_at,
    mixture_cdfs,
    padded_positions,
    volume_numel,
    wavefront,
)
from .native import wavefront_module
from .presets import Preset, get_preset
from .quantization import ste_round
from .rans_guard import StreamDecoder
from .transforms import AnalysisTransform, HyperAnalysis, HyperSynthesis, SynthesisTransform

DOWNSAMPLING = 64  # g_a divides by 16, h_a by 4 more: inputs are padded to a multiple of 64
# Largest |round(y)| + 1 the wavefront coder takes: every element's CDF spans 2 * ABS_MAX_LIMIT + 3
# values, so a crafted header asking for 65535 would make decoding crawl. Trained models stay far
# below: the shipped GAACNN MSE 0.0005 and 0.18 and MS-SSIM 220 models need 8, 46 and 74 over Kodak.
ABS_MAX_LIMIT = 1023


@contextmanager
def single_thread():
    """Run the wavefront loop on one thread: its thousands of tiny ops are faster without thread
    synchronisation, and encoder and decoder then compute the CDFs in the same order whatever
    thread count the caller uses (bit-exactness across machines' settings)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class GAACNN(CompressionModel):
    """Graph attention + asymmetric CNN image codec (Tang et al., TCSVT 2022)."""

    def __init__(self, preset: Preset | str = "small", context: bool = True) -> None:
        super().__init__()
        p = get_preset(preset) if isinstance(preset, str) else preset
        self.preset = p
        self.context = context
        self.straight_through = False  # training: g_s decodes round(y), straight-through (quantization.py)
        self.g_a = AnalysisTransform(p)
        self.g_s = SynthesisTransform(p)
        self.h_a = HyperAnalysis(p)
        self.h_s = HyperSynthesis(p)
        for block in self.h_s.modules():  # entropy parameters: computed as every earlier file's were
            if isinstance(block, ACBlock):
                block.literal_in_eval = True
        self.entropy_bottleneck = EntropyBottleneck(p.hyper)
        if context:
            self.context_model = MaskedConv3d(1, p.context_channels, p.context_kernel)
            self.entropy_parameters = EntropyParameters(p.context_channels, 2, p.param_hidden)
            self.gaussian_conditional = GaussianMixtureConditional(K=MIXTURES)
        else:
            self.gaussian_conditional = GaussianConditional(None)

    @property
    def downsampling_factor(self) -> int:
        return DOWNSAMPLING

    # ------------------------------------------------------------------ training / analysis
    def forward(self, x: Tensor) -> dict:
        """Training / analysis pass. Under mixed precision (bf16 autocast on a GPU) the transforms run
        in bf16 but the entropy models in float32: likelihoods of 1e-9 and CDF tails do not survive
        bf16's 8-bit mantissa, and the rate term is where the loss is most sensitive."""
        y = self.g_a(x)
        z = self.h_a(y)
        with _float32(x):
            z_hat, z_likelihoods = self.entropy_bottleneck(z.float())
        hyper = self.h_s(z_hat)
        with _float32(x):
            y, hyper = y.float(), hyper.float()
            if self.context:
                y_hat = self.gaussian_conditional.quantize(y, "noise" if self.training else "dequantize")
                weights, means, scales = self.mixture(y_hat, hyper)
                y_likelihoods = self.gaussian_conditional._likelihood(
                    y_hat, _stack_k(scales), _stack_k(means), _stack_k(weights)
                )
                y_likelihoods = self.gaussian_conditional.likelihood_lower_bound(y_likelihoods)
                if self.training and self.straight_through:
                    y_hat = ste_round(y)
            else:
                scales, means = hyper.chunk(2, dim=1)
                y_hat, y_likelihoods = self.gaussian_conditional(y, scales, means=means)
        x_hat = self.g_s(y_hat)
        return {"x_hat": x_hat, "likelihoods": {"y": y_likelihoods, "z": z_likelihoods}}

    def mixture(self, y_hat: Tensor, hyper: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Mixture weights, means, scales (B, K, M, H, W) from the masked context and h_s output."""
        b, m, h, w = y_hat.shape
        context = self.context_model(y_hat.unsqueeze(1))
        return self.entropy_parameters(context, hyper.view(b, 2, m, h, w))

    # ------------------------------------------------------------------ entropy coding
    def update(self, scale_table=None, force: bool = False, update_quantiles: bool = False) -> bool:
        if self.context:  # the mixture builds per-element CDFs; only the bottleneck has tables
            return self.entropy_bottleneck.update(force=force, update_quantiles=update_quantiles)
        return super().update(scale_table=scale_table, force=force, update_quantiles=update_quantiles)

    @torch.no_grad()
    def compress(self, x: Tensor) -> dict:
        """x (B, 3, H, W) with H, W multiples of 64 -> {"strings": [y_strings, z_strings], "shape"}."""
        y = self.g_a(x)
        z = self.h_a(y)
        z_strings = self.entropy_bottleneck.compress(z)
        z_hat = self.entropy_bottleneck.decompress(z_strings, z.size()[-2:])
        hyper = self.h_s(z_hat)
        if self.context:
            y_strings = [self._encode_wavefront(y[i], hyper[i]) for i in range(y.size(0))]
        else:
            scales, means = hyper.chunk(2, dim=1)
            indexes = self.gaussian_conditional.build_indexes(scales)
            y_strings = self.gaussian_conditional.compress(y, indexes, means=means)
        return {"strings": [y_strings, z_strings], "shape": z.size()[-2:]}

    @torch.no_grad()
    def decompress(self, strings: list, shape) -> dict:
        """Inverse of :meth:`compress`: {"x_hat"} (B, 3, 64*shape) clamped to [0, 1]."""
        z_hat = self.entropy_bottleneck.decompress(strings[1], shape)
        hyper = self.h_s(z_hat)
        if self.context:
            y_hat = torch.stack([self._decode_wavefront(s, hyper[i]) for i, s in enumerate(strings[0])])
        else:
            scales, means = hyper.chunk(2, dim=1)
            indexes = self.gaussian_conditional.build_indexes(scales)
            y_hat = self.gaussian_conditional.decompress(strings[0], indexes, means=means)
        return {"x_hat": self.synthesize(y_hat).clamp_(0, 1), "y_hat": y_hat}

    def synthesize(self, y_hat: Tensor) -> Tensor:
        """g_s for decoding, in the channels-last layout that oneDNN's CPU convolutions work in (g_s is
        most of a decode once the wavefront is compiled: kodim01 0.62 -> 0.47 s, one thread; the same
        function up to float rounding, ~5e-7). The weights move to that layout once."""
        for p in self.g_s.parameters():
            if p.dim() == 4 and not p.is_contiguous(memory_format=torch.channels_last):
                p.data = p.data.contiguous(memory_format=torch.channels_last)
        return self.g_s(y_hat.contiguous(memory_format=torch.channels_last)).contiguous()

    def _coding_state(self, shape: tuple[int, int, int]) -> tuple[Wavefront, Tensor, Tensor]:
        schedule = wavefront(shape, self.preset.context_kernel)
        taps_weight, taps_bias = context_taps_weight(self.context_model)
        return schedule, taps_weight, taps_bias

    def _step_cdfs(self, volume, positions, hyper_at, schedule, taps_weight, taps_bias, abs_max):
        weights, means, scales = entropy_parameters_at(
            volume, positions, hyper_at, schedule, taps_weight, taps_bias, self.entropy_parameters
        )
        cdfs = mixture_cdfs(weights, means, scales, abs_max)  # = CompressAI's _build_cdf, faster
        n = len(cdfs)
        return cdfs, [2 * abs_max + 3] * n, [0] * n

    def _wavefront_steps(self, volume: Tensor, hyper: Tensor, shape: tuple[int, int, int], abs_max: int):
        """Walk the wavefront order; yield each step's element indices, padded positions and CDFs.

        Encoder and decoder share this walk, so both build the same CDFs from the same values:
        the caller fills ``volume`` (at the yielded positions) before asking for the next step.
        """
        schedule, taps_weight, taps_bias = self._coding_state(shape)
        r = self.preset.context_kernel // 2
        # Everything that does not depend on decoded values, once for all steps (then sliced per step).
        all_positions = padded_positions(schedule.order, shape, r)
        hyper_in_order = hyper.reshape(2, -1).t()[schedule.order]
        start = 0
        for n in schedule.counts:
            step = slice(start, start + n)
            start += n
            positions = all_positions[step]
            cdfs, lengths, offsets = self._step_cdfs(
                volume, positions, hyper_in_order[step], schedule, taps_weight, taps_bias, abs_max
            )
            yield schedule.order[step], positions, (list(range(n)), cdfs, lengths, offsets)

    def _padded_volume(self, shape: tuple[int, int, int], device: torch.device) -> Tensor:
        return torch.zeros(volume_numel(shape, self.preset.context_kernel // 2), device=device)

    @single_thread()
    def _encode_wavefront(self, y: Tensor, hyper: Tensor) -> bytes:
        """Code round(y) (M, H, W) in wavefront steps; returns 2-byte abs_max + rANS stream."""
        shape = tuple(y.shape)
        y_hat = torch.round(y)
        abs_max = max(1, int(y_hat.abs().max().item()) + 1)
        if abs_max > ABS_MAX_LIMIT:
            raise ValueError(f"latent values out of range (|y| up to {abs_max - 1}, the coder takes "
                             f"{ABS_MAX_LIMIT - 1}): the model weights are not usable for this image")
        volume = self._padded_volume(shape, y.device)
        flat_values = y_hat.flatten()
        r = self.preset.context_kernel // 2
        volume[padded_positions(torch.arange(flat_values.numel(), device=y.device), shape, r)] = flat_values
        digest = getattr(self, "symbol_digest", None)
        native = wavefront_module() if y.device.type == "cpu" else None
        if native is not None:
            order, walk = self._native_walk(shape, hyper)
            symbols = (flat_values[order] + abs_max).int()
            if digest is not None:
                digest.update(symbols.numpy())
            stream = native.encode(volume, symbols, abs_max, *walk)
            return struct.pack(">H", abs_max) + stream
        encoder = BufferedRansEncoder()
        for idx, _, coding in self._wavefront_steps(volume, hyper, shape, abs_max):
            symbols = (flat_values[idx] + abs_max).int().tolist()
            encoder.encode_with_indexes(symbols, *coding)
            if digest is not None:
                digest.update(symbols)
        return struct.pack(">H", abs_max) + encoder.flush()

    @single_thread()
    def _decode_wavefront(self, string: bytes, hyper: Tensor) -> Tensor:
        """Inverse of :meth:`_encode_wavefront`: the decoded (M, H, W) latent."""
        shape = (self.preset.latent, hyper.size(-2), hyper.size(-1))
        if len(string) < 2:
            raise BitstreamError("the latent stream is truncated: corrupted")
        (abs_max,) = struct.unpack(">H", string[:2])
        if not 1 <= abs_max <= ABS_MAX_LIMIT:
            raise BitstreamError(f"the latent stream declares values up to {abs_max}: corrupted")
        native = wavefront_module() if hyper.device.type == "cpu" else None
        if native is not None:
            return self._decode_wavefront_native(native, string[2:], abs_max, hyper, shape)
        volume = self._padded_volume(shape, hyper.device)
        decoder = StreamDecoder(string[2:], shape[0] * shape[1] * shape[2])
        digest = getattr(self, "symbol_digest", None)
        for _, positions, coding in self._wavefront_steps(volume, hyper, shape, abs_max):
            decoded = decoder.decode(*coding)
            if digest is not None:
                digest.update(decoded)
            volume[positions] = torch.tensor(decoded, dtype=volume.dtype, device=volume.device) - abs_max
        decoder.finish()
        return self._unpad(volume, shape)

    def _decode_wavefront_native(self, native, stream: bytes, abs_max: int, hyper: Tensor,
                                 shape: tuple[int, int, int]) -> Tensor:
        """The same walk as :meth:`_decode_wavefront` in C++ (``native.py``): the same symbols, ~10x faster."""
        positions, counts, gather, hyper_in_order, *net = self._native_walk(shape, hyper)[1]
        try:
            volume, symbols = native.decode(
                torch.frombuffer(bytearray(stream), dtype=torch.uint8), abs_max, positions, counts, gather,
                hyper_in_order, volume_numel(shape, self.preset.context_kernel // 2), *net,
            )
        except ValueError as exc:  # the module's StreamError: a stream that ran out or did not end
            raise BitstreamError(f"{exc}: corrupted") from None
        digest = getattr(self, "symbol_digest", None)
        if digest is not None:
            digest.update(symbols.numpy())
        return self._unpad(volume, shape)

    def _native_walk(self, shape: tuple[int, int, int], hyper: Tensor) -> tuple[Tensor, tuple]:
        """The coding order (flat element indices), and what the compiled loop needs of the Python walk
        (:meth:`_wavefront_steps`): padded positions in that order, step sizes, tap offsets, h_s's two
        values per element in that order, and the weights of the context taps and of the entropy
        network's three 1x1x1 layers."""
        schedule, taps_weight, taps_bias = self._coding_state(shape)
        layers = [m for m in self.entropy_parameters.net if isinstance(m, torch.nn.Conv3d)]
        return schedule.order, (
            padded_positions(schedule.order, shape, self.preset.context_kernel // 2), schedule.counts,
            schedule.gather, hyper.reshape(2, -1).t()[schedule.order].contiguous(),
            taps_weight.detach().contiguous(), taps_bias.detach(),
            [m.weight.detach().flatten(1) for m in layers], [m.bias.detach() for m in layers])

    def _unpad(self, volume: Tensor, shape: tuple[int, int, int]) -> Tensor:
        r = self.preset.context_kernel // 2
        padded = volume.view(shape[0] + 2 * r, shape[1] + 2 * r, shape[2] + 2 * r)
        return padded[r : r + shape[0], r : r + shape[1], r : r + shape[2]].clone()


def _float32(x: Tensor):
    """A region where autocast is off (the entropy models run in float32 whatever the caller enabled)."""
    return torch.autocast(device_type=x.device.type, enabled=False)


def _stack_k(t: Tensor) -> Tensor:
    """(B, K, M, H, W) -> (B, K*M, H, W), the channel layout of CompressAI's mixture model."""
    return t.flatten(1, 2)
