/* tinyser streaming feature frontend (C99, fixed buffers, no malloc).
 *
 * Turns a stream of audio into the int8 input of a tinyser model, exactly as
 * tinyser's `cmsis_mfcc` frontend (Python) does:
 *
 *   every TINYSER_HOP_LENGTH samples, once TINYSER_FRAME_LENGTH samples are in:
 *     frame  = the last TINYSER_FRAME_LENGTH samples (floats in [-1, 1))
 *     mfcc   = DCT . ln(mel . |rfft(window * frame)| + 1e-6)  (arm_mfcc_f32)
 *     input  = clip(round_half_even(((mfcc - mean) / std) / scale + zero_point))
 *
 * The constants (window, mel filters, DCT, mean, std, input quantisation,
 * sizes) are generated from the model's own metadata into tinyser_tables.h/.c
 * by `tinyser deploy`, so they always match the model.
 *
 * With TINYSER_USE_CMSIS_DSP defined (tinyser_config.h or -D; Cortex-M with
 * CMSIS-DSP), the frame is computed by arm_mfcc_f32; otherwise by the
 * portable code in tinyser_frontend.c (its own real FFT).
 *
 * Usage:
 *   static tinyser_frontend_t fe;
 *   static tinyser_window_t window;
 *   int8_t frame[TINYSER_N_MFCC];
 *   tinyser_frontend_init(&fe);
 *   tinyser_window_init(&window);
 *   for each block of at most TINYSER_HOP_LENGTH samples:
 *     if (tinyser_frontend_push_i16(&fe, block, n, frame) == 1)
 *       tinyser_window_push(&window, frame);
 *     if (tinyser_window_full(&window))
 *       tinyser_window_copy(&window, model_input);   (oldest frame first)
 */
#ifndef TINYSER_FRONTEND_H
#define TINYSER_FRONTEND_H

#include <stdint.h>

#include "tinyser_config.h"
#include "tinyser_tables.h"

#if defined(TINYSER_USE_CMSIS_DSP)
#include "arm_math.h"
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* arm_mfcc_f32 needs FRAME_LENGTH + 2 floats of scratch (2 * FRAME_LENGTH when
 * CMSIS-DSP is built with ARM_MFCC_CFFT_BASED); the portable code needs the
 * FRAME_LENGTH / 2 + 1 complex bins of the spectrum. */
#if defined(TINYSER_USE_CMSIS_DSP) && defined(ARM_MFCC_CFFT_BASED)
#define TINYSER_SCRATCH_FLOATS (2 * TINYSER_FRAME_LENGTH)
#else
#define TINYSER_SCRATCH_FLOATS (TINYSER_FRAME_LENGTH + 2)
#endif

/* The feature extractor: a ring of the last FRAME_LENGTH samples and the
 * buffers one frame is transformed in. */
typedef struct {
  float history[TINYSER_FRAME_LENGTH]; /* ring of the last FRAME_LENGTH samples */
  float frame[TINYSER_FRAME_LENGTH];   /* the frame being transformed (overwritten) */
  float scratch[TINYSER_SCRATCH_FLOATS]; /* spectrum, then mel energies */
  float mfcc[TINYSER_N_MFCC];          /* raw coefficients of the last frame */
  uint32_t pos;                        /* where the next sample goes in history */
  uint32_t until_frame;                /* samples still needed for the next frame */
#if defined(TINYSER_USE_CMSIS_DSP)
  arm_mfcc_instance_f32 cmsis;
#endif
} tinyser_frontend_t;

/* The model's input window: the last TINYSER_N_FRAMES quantised frames, a ring. */
typedef struct {
  int8_t rows[TINYSER_N_FRAMES * TINYSER_N_MFCC];
  uint32_t next;  /* the row written next */
  uint32_t count; /* rows held, at most TINYSER_N_FRAMES */
} tinyser_window_t;

/* Reset the frontend. Returns 0, or -1 if CMSIS-DSP refused the tables. */
int tinyser_frontend_init(tinyser_frontend_t *fe);

/* Push n <= TINYSER_HOP_LENGTH samples (floats in [-1, 1)). Returns 1 when a
 * frame was completed and its TINYSER_N_MFCC int8 model inputs written to out,
 * 0 when not, -1 when n is too large. */
int tinyser_frontend_push_f32(tinyser_frontend_t *fe, const float *samples, uint32_t n, int8_t *out);

/* The same for 16-bit PCM (sample / 32768, as tinyser reads PCM files). */
int tinyser_frontend_push_i16(tinyser_frontend_t *fe, const int16_t *samples, uint32_t n, int8_t *out);

/* Raw MFCCs of one frame of TINYSER_FRAME_LENGTH samples, left in fe->mfcc.
 * fe->frame is used (and overwritten) as the input. */
void tinyser_frontend_mfcc(tinyser_frontend_t *fe);

/* Standardise TINYSER_N_MFCC raw coefficients and quantise them to int8. */
void tinyser_quantize(const float *mfcc, int8_t *out);

void tinyser_window_init(tinyser_window_t *w);
void tinyser_window_push(tinyser_window_t *w, const int8_t *frame);
int tinyser_window_full(const tinyser_window_t *w);
/* Copy the window into the model input (frames x coefficients, oldest first). */
void tinyser_window_copy(const tinyser_window_t *w, int8_t *input);

#ifdef __cplusplus
}
#endif

#endif /* TINYSER_FRONTEND_H */
