/* tinyser streaming feature frontend: see tinyser_frontend.h. */
#include "tinyser_frontend.h"

#include <math.h>
#include <string.h>

/* Float arithmetic exactly as written (no fused multiply-add), as tinyser's
 * Python reference computes it: a Cortex-M4F has VFMA, and GCC in its default
 * GNU modes would fuse a * b + c into it (one rounding instead of two). */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#define FRAME_LEN TINYSER_FRAME_LENGTH       /* samples in a frame, a power of two */
#define HALF_LEN (TINYSER_FRAME_LENGTH / 2) /* complex points of the FFT */

#if (TINYSER_FRAME_LENGTH & (TINYSER_FRAME_LENGTH - 1)) != 0
#error "TINYSER_FRAME_LENGTH must be a power of two"
#endif

#if !defined(TINYSER_USE_CMSIS_DSP)

/* i with its lowest `bits` bits in reverse order (`rbit` on a Cortex-M3/M4/M7). */
static uint32_t bit_reverse(uint32_t i, uint32_t bits) {
#if defined(__thumb2__) && defined(__ARM_ARCH_7EM__)
  uint32_t r;
  __asm__("rbit %0, %1" : "=r"(r) : "r"(i));
  return r >> (32u - bits);
#else
  uint32_t r = 0;
  for (; bits != 0; bits--, i >>= 1) r = (r << 1) | (i & 1u);
  return r;
#endif
}

/* In-place complex FFT of n points (interleaved re, im; n a power of two,
 * at most HALF_LEN), radix 2, decimation in time. Twiddles: tinyser_twiddle[2k],
 * [2k+1] = cos, sin of 2 pi k / FRAME_LEN, so W_len^j = exp(-2 pi i j / len) is
 * entry j * FRAME_LEN / len; each is read once a stage, for all its
 * butterflies, and the first (W = 1) multiplies nothing. */
static void complex_fft(float *z, uint32_t n) {
  uint32_t i, j, bits = 0, len, start, k;
  while ((1u << bits) < n) bits++;
  for (i = 1; i < n; i++) { /* bit-reversed order */
    j = bit_reverse(i, bits);
    if (i < j) {
      float re = z[2 * i], im = z[2 * i + 1];
      z[2 * i] = z[2 * j];
      z[2 * i + 1] = z[2 * j + 1];
      z[2 * j] = re;
      z[2 * j + 1] = im;
    }
  }
  for (len = 2; len <= n; len <<= 1) {
    uint32_t half = len >> 1, step = FRAME_LEN / len;
    for (start = 0; start < n; start += len) { /* k = 0: W = 1 */
      float *a = z + 2 * start, *b = a + 2 * half;
      float ar = a[0], ai = a[1], br = b[0], bi = b[1];
      b[0] = ar - br;
      b[1] = ai - bi;
      a[0] = ar + br;
      a[1] = ai + bi;
    }
    for (k = 1; k < half; k++) {
      float wr = tinyser_twiddle[2 * k * step], wi = -tinyser_twiddle[2 * k * step + 1];
      for (start = k; start < n; start += len) {
        float *a = z + 2 * start, *b = a + 2 * half;
        float ar = a[0], ai = a[1], br = b[0], bi = b[1];
        float tr = br * wr - bi * wi, ti = br * wi + bi * wr;
        b[0] = ar - tr;
        b[1] = ai - ti;
        a[0] = ar + tr;
        a[1] = ai + ti;
      }
    }
  }
}

/* Unscaled DFT bins 0..n/2 of n real samples x (overwritten; n a power of
 * two, at most FRAME_LEN), into spec as n/2 + 1 complex values: the real
 * samples are transformed as n/2 complex ones z[j] = x[2j] + i x[2j+1], whose
 * spectrum Z splits into the even- and odd-sample spectra E, O; then
 * X[k] = E[k] + exp(-2 pi i k / n) O[k]. */
static void real_fft(float *x, float *spec, uint32_t n) {
  uint32_t k, half = n / 2, step = FRAME_LEN / n;
  complex_fft(x, half);
  spec[0] = x[0] + x[1];
  spec[1] = 0.0f;
  spec[2 * half] = x[0] - x[1];
  spec[2 * half + 1] = 0.0f;
  for (k = 1; k < half; k++) {
    float ar = x[2 * k], ai = x[2 * k + 1];
    float br = x[2 * (half - k)], bi = x[2 * (half - k) + 1];
    float er = 0.5f * (ar + br), ei = 0.5f * (ai - bi); /* E[k] */
    float or_ = 0.5f * (ai + bi), oi = -0.5f * (ar - br); /* O[k] */
    float c = tinyser_twiddle[2 * k * step], s = tinyser_twiddle[2 * k * step + 1];
    spec[2 * k] = er + c * or_ + s * oi;
    spec[2 * k + 1] = ei + c * oi - s * or_;
  }
}

/* arm_mfcc_f32's steps, written out (see tinyser/features/cmsis.py). */
void tinyser_frontend_mfcc(tinyser_frontend_t *fe) {
  float *x = fe->frame, *spec = fe->scratch;
  const float *coefs = tinyser_filter_coefs;
  float peak = 0.0f;
  uint32_t i, j;
  for (i = 0; i < FRAME_LEN; i++) { /* 1. normalise the frame to its peak */
    float a = fabsf(x[i]);
    if (a > peak) peak = a;
  }
  if (peak != 0.0f) {
    float inv = 1.0f / peak;
    for (i = 0; i < FRAME_LEN; i++) x[i] *= inv;
  }
  for (i = 0; i < FRAME_LEN; i++) x[i] *= tinyser_window_coefs[i]; /* 2. window */
  real_fft(x, spec, FRAME_LEN);                                      /* 3. spectrum */
  for (i = 0; i <= HALF_LEN; i++) {                                  /* 4. magnitude, peak undone */
    float re = spec[2 * i], im = spec[2 * i + 1];
    x[i] = sqrtf(re * re + im * im);
  }
  if (peak != 0.0f) {
    for (i = 0; i <= HALF_LEN; i++) x[i] *= peak;
  }
  for (j = 0; j < TINYSER_N_MELS; j++) { /* 5. mel energies */
    const float *a = x + tinyser_filter_pos[j];
    float sum = 0.0f;
    for (i = 0; i < tinyser_filter_len[j]; i++) sum += a[i] * coefs[i];
    coefs += tinyser_filter_len[j];
    spec[j] = logf(sum + 1.0e-6f); /* 6. log */
  }
  for (i = 0; i < TINYSER_N_MFCC; i++) { /* 7. DCT */
    const float *row = tinyser_dct + i * TINYSER_N_MELS;
    float sum = 0.0f;
    for (j = 0; j < TINYSER_N_MELS; j++) sum += row[j] * spec[j];
    fe->mfcc[i] = sum;
  }
}

#else /* TINYSER_USE_CMSIS_DSP */

void tinyser_frontend_mfcc(tinyser_frontend_t *fe) {
  arm_mfcc_f32(&fe->cmsis, fe->frame, fe->mfcc, fe->scratch);
}

#endif

#if TINYSER_ANALYSE

#define Q TINYSER_P_Q         /* FRAME_LEN / 4: the band ends at or below a quarter of the rate */
#define M_LO TINYSER_P_M_LO   /* even lags 2m, M_LO <= m <= M_HI, cover the pitch range */
#define M_HI TINYSER_P_M_HI
#define LAG0 TINYSER_P_LAG0   /* the first lag tinyser_lag_corr holds: 2 M_LO - 2 */

/* H[lag - 1] and H[lag + 1]: each the sum of P[k] cos(2 pi k l / FRAME_LEN)
 * over the band, in order (one pass for both). */
static void odd_lags(const float *p, uint32_t lag, float *below, float *above) {
  float lo = 0.0f, hi = 0.0f;
  uint32_t k, i = (TINYSER_P_K_LO * (lag - 1)) & (FRAME_LEN - 1), j = (TINYSER_P_K_LO * (lag + 1)) & (FRAME_LEN - 1);
  for (k = TINYSER_P_K_LO; k <= TINYSER_P_K_HI; k++) {
    lo = lo + p[k] * tinyser_p_cos[i];
    hi = hi + p[k] * tinyser_p_cos[j];
    i = (i + lag - 1) & (FRAME_LEN - 1);
    j = (j + lag + 1) & (FRAME_LEN - 1);
  }
  *below = lo;
  *above = hi;
}

/* The parabola through a, b, c: the offset of its top (in steps, within
 * +-0.5; 0 unless it bends down) into *d, its height returned. */
static float parabola(float a, float b, float c, float *d) {
  float den = (a + c) - (b + b);
  *d = 0.0f;
  if (den < 0.0f) *d = (0.5f * (a - c)) / den;
  if (*d < -0.5f) *d = -0.5f;
  if (*d > 0.5f) *d = 0.5f;
  return b - (0.25f * (a - c)) * *d;
}

/* Prosody of one frame, the float32 steps of tinyser/features/prosody.py:
 * power P in the pitch band (from the magnitude the MFCC left in fe->frame);
 * its autocorrelation at even lags as a DCT-I of Q + 1 points through a real
 * FFT of Q points, normalised and window-corrected; the shortest even-lag peak
 * whose interpolated height is within TINYSER_P_OCTAVE_RATIO of the best; the
 * odd lags beside it from their own sums, the full-resolution peak and its
 * parabolic interpolation; then the voice-activity floor (tinyser/vad.py). */
void tinyser_frontend_prosody(tinyser_frontend_t *fe) {
  float *p = fe->frame, *y = fe->scratch, *spec = fe->scratch + Q, *nr = fe->frame + Q + 1;
  float r0, inv, e, acc, best = 0.0f, lag = 0.0f, strength = 0.0f, loud, semitones = 0.0f, d;
  uint32_t k, j, m, pick = 0;
  int has = 0, voiced;
  for (k = 0; k < TINYSER_P_K_LO; k++) p[k] = 0.0f; /* 2. the band's power; H[2]'s sum on the way */
  acc = 0.0f;
  for (k = TINYSER_P_K_LO; k <= (TINYSER_P_K_HI < Q - 1 ? TINYSER_P_K_HI : Q - 1); k++) {
    float v = p[k] * p[k];
    p[k] = v;
    acc = acc + v * tinyser_p_cos[2 * k];
  }
  if (TINYSER_P_K_HI == Q) p[Q] = p[Q] * p[Q];
  for (k = TINYSER_P_K_HI + 1; k <= Q; k++) p[k] = 0.0f;
  /* 3. y[j] = (p[j] + p[Q-j]) / 2 - sin(pi j / Q) (p[j] - p[Q-j]); y[Q-j] shares both terms
   * (the same float values: sin is symmetric, the difference changes sign exactly) */
  y[0] = 0.5f * (p[0] + p[Q]);
  y[Q / 2] = p[Q / 2];
  for (j = 1; j < Q / 2; j++) {
    float u = 0.5f * (p[j] + p[Q - j]), sd = tinyser_p_cos[2 * j + 3 * FRAME_LEN / 4] * (p[j] - p[Q - j]);
    y[j] = u - sd;
    y[Q - j] = u + sd;
  }
#if defined(TINYSER_USE_CMSIS_DSP)
  arm_rfft_fast_f32(&fe->rfft, y, spec, 0); /* Re Y_i = spec[2i], Im Y_i = spec[2i+1], 0 < i < Q/2 */
#else
  real_fft(y, spec, Q);
#endif
  e = 0.5f * (p[0] + p[Q]);
  r0 = spec[0] + e; /* H[0]: even lag 2m is Re Y_{m/2} + e, odd m follows from m - 2 */
  inv = r0 > 0.0f ? 1.0f / r0 : 0.0f;
  acc = acc + (p[0] - p[Q]); /* H[2]: the DCT-I's first odd output */
  for (m = 1; m <= M_HI + 1; m++) { /* 4. normalised, window-corrected, even lags 2m >= LAG0 */
    float h;
    if (m & 1u) {
      if (m > 1) acc = acc - spec[m];
      h = acc;
    } else {
      h = spec[m] + e;
    }
    if (m >= M_LO - 1) nr[m - (M_LO - 1)] = (h * inv) * tinyser_lag_corr[2 * m - LAG0];
  }
  if (r0 > 0.0f) { /* 5. positive local maxima, the best height, then the shortest lag near it */
    for (j = 1; j <= M_HI - M_LO + 1; j++) {
      if (nr[j] > nr[j - 1] && nr[j] >= nr[j + 1]) {
        float h = parabola(nr[j - 1], nr[j], nr[j + 1], &d);
        if (h > best) {
          best = h;
          has = 1;
        }
      }
    }
    if (has) {
      float want = TINYSER_P_OCTAVE_RATIO * best;
      for (j = 1; j <= M_HI - M_LO + 1; j++) {
        if (nr[j] > nr[j - 1] && nr[j] >= nr[j + 1] && parabola(nr[j - 1], nr[j], nr[j + 1], &d) >= want) {
          pick = j;
          break;
        }
      }
    }
  }
  if (has) { /* 6. the odd lags beside it, the full-resolution peak, parabolic interpolation */
    uint32_t tau = 2 * (M_LO - 1 + pick), top = 0;
    float near[3], a, b, c;
    odd_lags(p, tau, &near[0], &near[2]);
    near[0] = (near[0] * inv) * tinyser_lag_corr[tau - 1 - LAG0];
    near[1] = nr[pick];
    near[2] = (near[2] * inv) * tinyser_lag_corr[tau + 1 - LAG0];
    if (near[1] > near[0]) top = 1;
    if (near[2] > near[0] && near[2] > near[1]) top = 2;
    a = top == 0 ? nr[pick - 1] : near[top - 1];
    b = near[top];
    c = top == 2 ? nr[pick + 1] : near[top + 1];
    strength = parabola(a, b, c, &d);
    lag = (float)(tau - 1 + top) + d;
    if (strength < 0.0f) strength = 0.0f;
    if (strength > 1.0f) strength = 1.0f;
  }
  loud = logf(r0 * TINYSER_P_LOUD_SCALE + TINYSER_P_LOUDNESS_FLOOR) * TINYSER_P_DB_SCALE; /* 8. */
  voiced = has && strength >= TINYSER_P_VOICING_THRESHOLD && loud >= TINYSER_P_MIN_LEVEL_DB; /* 7. */
  if (voiced) semitones = logf(TINYSER_P_ST_K / lag) * TINYSER_P_ST_SCALE;
  fe->prosody[0] = semitones;
  fe->prosody[1] = strength;
  fe->prosody[2] = loud;
#if TINYSER_N_PROSODY > 0
  fe->mfcc[TINYSER_N_MFCC] = semitones;
  fe->mfcc[TINYSER_N_MFCC + 1] = strength;
  fe->mfcc[TINYSER_N_MFCC + 2] = loud;
#endif
#if TINYSER_VAD
  if (fe->frames == 0) { /* the noise floor: starts below the first frame, falls at once, rises slowly */
    float start = loud - TINYSER_VAD_MARGIN_DB;
    fe->vad_floor = start > TINYSER_VAD_LOWEST_DB ? start : TINYSER_VAD_LOWEST_DB;
  } else if (loud < fe->vad_floor) { /* never below min_level - margin: lower would change nothing */
    fe->vad_floor = loud > TINYSER_VAD_LOWEST_DB ? loud : TINYSER_VAD_LOWEST_DB;
  } else {
    float up = fe->vad_floor + TINYSER_VAD_RISE_DB;
    fe->vad_floor = up < loud ? up : loud;
  }
  fe->speech = loud >= fe->vad_floor + TINYSER_VAD_MARGIN_DB && strength >= TINYSER_VAD_MIN_VOICING &&
               loud >= TINYSER_VAD_MIN_LEVEL_DB;
#endif
}

#endif /* TINYSER_ANALYSE */

int tinyser_frontend_init(tinyser_frontend_t *fe) {
  memset(fe->history, 0, sizeof(fe->history));
  fe->pos = 0;
  fe->until_frame = FRAME_LEN;
  fe->frames = 0;
  fe->speech = 1;
  memset(fe->mfcc, 0, sizeof(fe->mfcc)); /* the delta slots stay 0 until tinyser_window_copy */
  fe->vad_floor = 0.0f;
#if defined(TINYSER_USE_CMSIS_DSP)
  if (arm_mfcc_init_f32(&fe->cmsis, FRAME_LEN, TINYSER_N_MELS, TINYSER_N_MFCC, tinyser_dct, tinyser_filter_pos,
                        tinyser_filter_len, tinyser_filter_coefs, tinyser_window_coefs) != ARM_MATH_SUCCESS) {
    return -1;
  }
#if TINYSER_ANALYSE
  if (arm_rfft_fast_init_f32(&fe->rfft, FRAME_LEN / 4) != ARM_MATH_SUCCESS) return -1;
#endif
#endif
  return 0;
}

/* clip(round_half_even(z / scale + zero_point)): rintf rounds half to even, as
 * numpy's round does in tinyser's Python quantiser. */
static int8_t quantize_one(float z) {
  float q = rintf(z / TINYSER_INPUT_SCALE + (float)TINYSER_INPUT_ZERO_POINT);
  return (int8_t)(q < -128.0f ? -128.0f : (q > 127.0f ? 127.0f : q));
}

void tinyser_quantize(const float *features, int8_t *out) {
  uint32_t i;
  for (i = 0; i < TINYSER_N_FEATURES; i++) out[i] = quantize_one((features[i] - tinyser_mean[i]) / tinyser_std[i]);
}

/* Add one sample to the ring; 1 when it completes a frame. */
static int add_sample(tinyser_frontend_t *fe, float x) {
  fe->history[fe->pos] = x;
  fe->pos = (fe->pos + 1) & (FRAME_LEN - 1);
  if (--fe->until_frame != 0) return 0;
  fe->until_frame = TINYSER_HOP_LENGTH;
  return 1;
}

/* The completed frame: the ring in time order, transformed. */
static void emit_frame(tinyser_frontend_t *fe, tinyser_frame_t *out) {
  memcpy(fe->frame, fe->history + fe->pos, (FRAME_LEN - fe->pos) * sizeof(float));
  memcpy(fe->frame + (FRAME_LEN - fe->pos), fe->history, fe->pos * sizeof(float));
  tinyser_frontend_mfcc(fe);
#if TINYSER_ANALYSE
  tinyser_frontend_prosody(fe);
#endif
  if (fe->frames != 0xFFFFFFFFu) fe->frames++;
  memcpy(out->features, fe->mfcc, sizeof(fe->mfcc));
  out->speech = (uint8_t)(fe->speech != 0);
}

int tinyser_frontend_push_f32(tinyser_frontend_t *fe, const float *samples, uint32_t n, tinyser_frame_t *out) {
  int ready = 0;
  uint32_t i;
  if (n > TINYSER_HOP_LENGTH) return -1;
  for (i = 0; i < n; i++) {
    if (add_sample(fe, samples[i])) {
      emit_frame(fe, out);
      ready = 1;
    }
  }
  return ready;
}

int tinyser_frontend_push_i16(tinyser_frontend_t *fe, const int16_t *samples, uint32_t n, tinyser_frame_t *out) {
  int ready = 0;
  uint32_t i;
  if (n > TINYSER_HOP_LENGTH) return -1;
  for (i = 0; i < n; i++) {
    if (add_sample(fe, (float)samples[i] * (1.0f / 32768.0f))) {
      emit_frame(fe, out);
      ready = 1;
    }
  }
  return ready;
}

void tinyser_window_init(tinyser_window_t *w) {
  memset(w->rows, 0, sizeof(w->rows));
  memset(w->speech, 0, sizeof(w->speech));
  w->next = 0;
  w->count = 0;
  w->fresh = 0;
#if TINYSER_ADAPTIVE
  { /* started from the training statistics: mu = mean, sq = std^2 + mean^2 */
    uint32_t i;
    for (i = 0; i < TINYSER_N_FEATURES; i++) {
      w->mu[i] = tinyser_mean[i];
      w->sq[i] = tinyser_std[i] * tinyser_std[i] + tinyser_mean[i] * tinyser_mean[i];
    }
  }
#endif
}

void tinyser_window_push(tinyser_window_t *w, const tinyser_frame_t *frame) {
  memcpy(w->rows + w->next * TINYSER_N_FEATURES, frame->features, sizeof(frame->features));
  w->speech[w->next] = frame->speech;
  w->next = (w->next + 1) % TINYSER_N_FRAMES;
  if (w->count < TINYSER_N_FRAMES) w->count++;
  if (w->fresh < TINYSER_N_FRAMES) w->fresh++;
}

int tinyser_window_full(const tinyser_window_t *w) { return w->count == TINYSER_N_FRAMES; }

int tinyser_window_speech(const tinyser_window_t *w) {
#if TINYSER_VAD
  uint32_t i, n = 0;
  for (i = 0; i < TINYSER_N_FRAMES; i++) n += w->speech[i];
  return n >= TINYSER_VAD_MIN_FRAMES;
#else
  (void)w;
  return 1;
#endif
}

/* Row of the t-th oldest frame (t = 0 the oldest of the ring's N_FRAMES). */
static const float *row(const tinyser_window_t *w, uint32_t t) {
  return w->rows + ((w->next + t) % TINYSER_N_FRAMES) * TINYSER_N_FEATURES;
}

#if TINYSER_ADAPTIVE
/* tinyser/features/adaptive.py, AdaptiveNorm.update: the new frames whose c0 >=
 * gate, summed in time order; mu += a (s1/n - mu), sq += a (s2/n - sq). */
static void adapt(tinyser_window_t *w) {
  uint32_t i, t, n = 0, first = TINYSER_N_FRAMES - w->fresh;
  for (t = first; t < TINYSER_N_FRAMES; t++) n += row(w, t)[0] >= TINYSER_ADAPT_GATE;
  if (n == 0) return;
  for (i = 0; i < TINYSER_N_FEATURES; i++) {
    float s1 = 0.0f, s2 = 0.0f, a = tinyser_adapt_alpha[n], fn = (float)n;
    for (t = first; t < TINYSER_N_FRAMES; t++) {
      const float *x = row(w, t);
      if (x[0] >= TINYSER_ADAPT_GATE) {
        s1 += x[i];
        s2 += x[i] * x[i];
      }
    }
    w->mu[i] = w->mu[i] + a * (s1 / fn - w->mu[i]);
    w->sq[i] = w->sq[i] + a * (s2 / fn - w->sq[i]);
  }
}
#endif

#if TINYSER_PROSODY_DELTAS
/* The prosody deltas of the window, oldest frame first: each frame's channels minus the
 * previous frame's, 0 for the window's oldest frame (tinyser/features/cmsis.py). */
static void fill_deltas(tinyser_window_t *w) {
  uint32_t t, c;
  for (t = TINYSER_N_FRAMES; t-- > 0;) { /* newest first: the previous row is still unchanged */
    float *x = w->rows + ((w->next + t) % TINYSER_N_FRAMES) * TINYSER_N_FEATURES;
    const float *prev = row(w, t ? t - 1 : 0);
    for (c = 0; c < 3; c++) {
      x[TINYSER_N_MFCC + 3 + c] = t ? x[TINYSER_N_MFCC + c] - prev[TINYSER_N_MFCC + c] : 0.0f;
    }
  }
}
#endif

#if TINYSER_TILE
/* tinyser/features/tile.py: the input rows become the window's sound span (its first to
 * last frame with raw c0 >= gate) repeated from its start; no sound: unchanged. */
static void tile(const tinyser_window_t *w, int8_t *input) {
  const uint32_t f = TINYSER_N_FEATURES;
  uint32_t t, first = TINYSER_N_FRAMES, last = 0, len;
  for (t = 0; t < TINYSER_N_FRAMES; t++) {
    if (row(w, t)[0] >= TINYSER_TILE_GATE) {
      if (first == TINYSER_N_FRAMES) first = t;
      last = t;
    }
  }
  if (first == TINYSER_N_FRAMES) return;
  len = last - first + 1;
  if (len == TINYSER_N_FRAMES) return;
  memmove(input, input + first * f, len * f);
  for (t = len; t < TINYSER_N_FRAMES; t++) memcpy(input + t * f, input + (t - len) * f, f);
}
#endif

void tinyser_window_copy(tinyser_window_t *w, int8_t *input) {
  uint32_t t;
#if TINYSER_PROSODY_DELTAS
  fill_deltas(w);
#endif
#if TINYSER_ADAPTIVE
  uint32_t i;
  adapt(w);
  for (i = 0; i < TINYSER_N_FEATURES; i++) { /* (x - mu) / sqrt(max(sq - mu mu, floor)) */
    float var = w->sq[i] - w->mu[i] * w->mu[i];
    float sd = sqrtf(var < tinyser_adapt_floor[i] ? tinyser_adapt_floor[i] : var), mu = w->mu[i];
    for (t = 0; t < TINYSER_N_FRAMES; t++) input[t * TINYSER_N_FEATURES + i] = quantize_one((row(w, t)[i] - mu) / sd);
  }
#else
  for (t = 0; t < TINYSER_N_FRAMES; t++) tinyser_quantize(row(w, t), input + t * TINYSER_N_FEATURES);
#endif
#if TINYSER_TILE
  tile(w, input);
#endif
  w->fresh = 0;
}

void tinyser_balance_init(tinyser_balance_t *b, float time_constant) {
  uint32_t k;
  for (k = 0; k < TINYSER_N_CLASSES; ++k) b->mean[k] = 1.0f / (float)TINYSER_N_CLASSES;
  b->forget = -expm1f(-1.0f / time_constant);
  b->heard = 0;
}

void tinyser_balance(tinyser_balance_t *b, float *scores) {
  float given[TINYSER_N_CLASSES];
  float sum = 0.0f, rate;
  uint32_t k;
  for (k = 0; k < TINYSER_N_CLASSES; ++k) {
    given[k] = scores[k];
    scores[k] = given[k] / (b->mean[k] > 1e-12f ? b->mean[k] : 1e-12f);
    sum += scores[k];
  }
  for (k = 0; k < TINYSER_N_CLASSES; ++k) scores[k] = sum > 0.0f ? scores[k] / sum : 1.0f / (float)TINYSER_N_CLASSES;
  if (b->heard < UINT32_MAX) ++b->heard;
  /* the uniform start weighs as one call: the first calls are averaged evenly, then forgotten at `forget` */
  rate = 1.0f / (float)(b->heard + 1u);
  if (rate < b->forget) rate = b->forget;
  for (k = 0; k < TINYSER_N_CLASSES; ++k) b->mean[k] += rate * (given[k] - b->mean[k]);
}
