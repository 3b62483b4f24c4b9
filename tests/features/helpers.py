"""kaldi-native-fbank as the reference: the same options, fed the samples on Kaldi's int16 scale."""

from __future__ import annotations

import kaldi_native_fbank as knf
import numpy as np

from gruasr.features import FbankConfig, MfccConfig


def _frame_options(opts: knf.FrameExtractionOptions, cfg: FbankConfig) -> None:
    opts.samp_freq = cfg.sample_rate
    opts.frame_length_ms = cfg.frame_length_ms
    opts.frame_shift_ms = cfg.frame_shift_ms
    opts.dither = 0.0
    opts.preemph_coeff = cfg.preemph_coeff
    opts.remove_dc_offset = cfg.remove_dc_offset
    opts.window_type = cfg.window_type
    opts.blackman_coeff = cfg.blackman_coeff
    opts.round_to_power_of_two = cfg.round_to_power_of_two
    opts.snip_edges = cfg.snip_edges


def _mel_options(opts: knf.MelBanksOptions, cfg: FbankConfig) -> None:
    opts.num_bins = cfg.num_mel_bins
    opts.low_freq = cfg.low_freq
    opts.high_freq = cfg.high_freq


def knf_features(samples: np.ndarray, config: FbankConfig | MfccConfig) -> np.ndarray:
    """kaldi-native-fbank's features (T, dim) float32 for float samples in [-1, 1] (scaled by 32768 here)."""
    if isinstance(config, MfccConfig):
        mfcc = knf.MfccOptions()
        _frame_options(mfcc.frame_opts, config.fbank)
        _mel_options(mfcc.mel_opts, config.fbank)
        mfcc.num_ceps = config.num_ceps
        mfcc.cepstral_lifter = config.cepstral_lifter
        mfcc.use_energy = config.use_energy
        mfcc.energy_floor = config.fbank.energy_floor
        mfcc.raw_energy = config.fbank.raw_energy
        extractor = knf.OnlineMfcc(mfcc)
        rate, dim = config.fbank.sample_rate, config.dim
    else:
        opts = knf.FbankOptions()
        _frame_options(opts.frame_opts, config)
        _mel_options(opts.mel_opts, config)
        opts.use_energy = config.use_energy
        opts.energy_floor = config.energy_floor
        opts.raw_energy = config.raw_energy
        opts.use_log_fbank = config.use_log_fbank
        opts.use_power = config.use_power
        extractor = knf.OnlineFbank(opts)
        rate, dim = config.sample_rate, config.dim
    extractor.accept_waveform(rate, np.ascontiguousarray(samples * 32768.0, dtype=np.float32))
    extractor.input_finished()
    frames = [extractor.get_frame(i) for i in range(extractor.num_frames_ready)]
    return np.stack(frames) if frames else np.zeros((0, dim), dtype=np.float32)
