/* tinyser streaming feature frontend: see tinyser_frontend.h. */
#include "tinyser_frontend.h"

#include <math.h>
#include <string.h>

#define FRAME_LEN TINYSER_FRAME_LENGTH       /* samples in a frame, a power of two */
#define HALF_LEN (TINYSER_FRAME_LENGTH / 2) /* complex points of the FFT */

#if (TINYSER_FRAME_LENGTH & (TINYSER_FRAME_LENGTH - 1)) != 0
#error "TINYSER_FRAME_LENGTH must be a power of two"
#endif

#if !defined(TINYSER_USE_CMSIS_DSP)

/* In-place complex FFT of HALF_LEN points (interleaved re, im), radix 2,
 * decimation in time. Twiddles: tinyser_twiddle[2k], [2k+1] = cos, sin of
 * 2 pi k / FRAME_LEN, so W_len^j = exp(-2 pi i j / len) is entry
 * j * FRAME_LEN / len. */
static void complex_fft(float *z) {
  uint32_t i, j, bit, len, start, k;
  for (i = 1, j = 0; i < HALF_LEN; i++) { /* bit-reversed order */
    for (bit = HALF_LEN >> 1; j & bit; bit >>= 1) j ^= bit;
    j |= bit;
    if (i < j) {
      float re = z[2 * i], im = z[2 * i + 1];
      z[2 * i] = z[2 * j];
      z[2 * i + 1] = z[2 * j + 1];
      z[2 * j] = re;
      z[2 * j + 1] = im;
    }
  }
  for (len = 2; len <= HALF_LEN; len <<= 1) {
    uint32_t half = len >> 1, step = FRAME_LEN / len;
    for (start = 0; start < HALF_LEN; start += len) {
      for (k = 0; k < half; k++) {
        float wr = tinyser_twiddle[2 * k * step], wi = -tinyser_twiddle[2 * k * step + 1];
        float *a = z + 2 * (start + k), *b = z + 2 * (start + k + half);
        float tr = b[0] * wr - b[1] * wi, ti = b[0] * wi + b[1] * wr;
        b[0] = a[0] - tr;
        b[1] = a[1] - ti;
        a[0] += tr;
        a[1] += ti;
      }
    }
  }
}

/* Unscaled DFT bins 0..HALF_LEN of FRAME_LEN real samples x (overwritten),
 * into spec as HALF_LEN + 1 complex values: the real samples are transformed
 * as HALF_LEN complex ones z[n] = x[2n] + i x[2n+1], whose spectrum Z splits
 * into the even- and odd-sample spectra E, O; then
 * X[k] = E[k] + exp(-2 pi i k / FRAME_LEN) O[k]. */
static void real_fft(float *x, float *spec) {
  uint32_t k;
  complex_fft(x);
  spec[0] = x[0] + x[1];
  spec[1] = 0.0f;
  spec[2 * HALF_LEN] = x[0] - x[1];
  spec[2 * HALF_LEN + 1] = 0.0f;
  for (k = 1; k < HALF_LEN; k++) {
    float ar = x[2 * k], ai = x[2 * k + 1];
    float br = x[2 * (HALF_LEN - k)], bi = x[2 * (HALF_LEN - k) + 1];
    float er = 0.5f * (ar + br), ei = 0.5f * (ai - bi); /* E[k] */
    float or_ = 0.5f * (ai + bi), oi = -0.5f * (ar - br); /* O[k] */
    float c = tinyser_twiddle[2 * k], s = tinyser_twiddle[2 * k + 1];
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
  real_fft(x, spec);                                                 /* 3. spectrum */
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

int tinyser_frontend_init(tinyser_frontend_t *fe) {
  memset(fe->history, 0, sizeof(fe->history));
  fe->pos = 0;
  fe->until_frame = FRAME_LEN;
#if defined(TINYSER_USE_CMSIS_DSP)
  if (arm_mfcc_init_f32(&fe->cmsis, FRAME_LEN, TINYSER_N_MELS, TINYSER_N_MFCC, tinyser_dct, tinyser_filter_pos,
                        tinyser_filter_len, tinyser_filter_coefs, tinyser_window_coefs) != ARM_MATH_SUCCESS) {
    return -1;
  }
#endif
  return 0;
}

void tinyser_quantize(const float *mfcc, int8_t *out) {
  uint32_t i;
  for (i = 0; i < TINYSER_N_MFCC; i++) {
    float z = (mfcc[i] - tinyser_mean[i]) / tinyser_std[i];
    /* rintf rounds half to even, as numpy's round does in tinyser's Python quantiser */
    float q = rintf(z / TINYSER_INPUT_SCALE + (float)TINYSER_INPUT_ZERO_POINT);
    out[i] = (int8_t)(q < -128.0f ? -128.0f : (q > 127.0f ? 127.0f : q));
  }
}

/* Add one sample to the ring; 1 when it completes a frame. */
static int add_sample(tinyser_frontend_t *fe, float x) {
  fe->history[fe->pos] = x;
  fe->pos = (fe->pos + 1) & (FRAME_LEN - 1);
  if (--fe->until_frame != 0) return 0;
  fe->until_frame = TINYSER_HOP_LENGTH;
  return 1;
}

/* The completed frame: the ring in time order, transformed and quantised. */
static void emit_frame(tinyser_frontend_t *fe, int8_t *out) {
  memcpy(fe->frame, fe->history + fe->pos, (FRAME_LEN - fe->pos) * sizeof(float));
  memcpy(fe->frame + (FRAME_LEN - fe->pos), fe->history, fe->pos * sizeof(float));
  tinyser_frontend_mfcc(fe);
  tinyser_quantize(fe->mfcc, out);
}

int tinyser_frontend_push_f32(tinyser_frontend_t *fe, const float *samples, uint32_t n, int8_t *out) {
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

int tinyser_frontend_push_i16(tinyser_frontend_t *fe, const int16_t *samples, uint32_t n, int8_t *out) {
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
  w->next = 0;
  w->count = 0;
}

void tinyser_window_push(tinyser_window_t *w, const int8_t *frame) {
  memcpy(w->rows + w->next * TINYSER_N_MFCC, frame, TINYSER_N_MFCC);
  w->next = (w->next + 1) % TINYSER_N_FRAMES;
  if (w->count < TINYSER_N_FRAMES) w->count++;
}

int tinyser_window_full(const tinyser_window_t *w) { return w->count == TINYSER_N_FRAMES; }

void tinyser_window_copy(const tinyser_window_t *w, int8_t *input) {
  uint32_t older = (TINYSER_N_FRAMES - w->next) * TINYSER_N_MFCC; /* rows next.. are the oldest */
  memcpy(input, w->rows + w->next * TINYSER_N_MFCC, older);
  memcpy(input + older, w->rows, w->next * TINYSER_N_MFCC);
}
