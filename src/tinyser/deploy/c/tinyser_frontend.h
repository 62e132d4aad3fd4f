/* tinyser streaming feature frontend (C99, fixed buffers, no malloc).
 *
 * Turns a stream of audio into the int8 input of a tinyser model, exactly as
 * tinyser's `cmsis_mfcc` frontend (Python) does:
 *
 *   every TINYSER_HOP_LENGTH samples, once TINYSER_FRAME_LENGTH samples are in:
 *     frame    = the last TINYSER_FRAME_LENGTH samples (floats in [-1, 1))
 *     mfcc     = DCT . ln(mel . |rfft(window * frame)| + 1e-6)  (arm_mfcc_f32)
 *     prosody  = semitones, voicing strength, loudness of the same frame
 *                (only when the model has them: TINYSER_N_PROSODY = 3;
 *                tinyser/features/prosody.py), and with TINYSER_PROSODY_DELTAS
 *                their deltas, filled in per window (0 for its oldest frame)
 *     speech   = the voice-activity rule on that frame (tinyser/vad.py)
 *   every model window (the last TINYSER_N_FRAMES frames, raw floats):
 *     fixed:    input = quantise((x - mean) / std)
 *     adaptive (TINYSER_ADAPTIVE): the running mean and mean square are
 *               updated from the window's new frames whose c0 >= gate, then
 *               input = quantise((x - mu) / sqrt(max(sq - mu^2, floor)))
 *               (tinyser/features/adaptive.py, same float32 steps)
 *     quantise(z) = clip(round_half_even(z / scale + zero_point), -128, 127)
 *     tiled (TINYSER_TILE): the input rows become the window's sound span
 *               (first to last frame with raw c0 >= TINYSER_TILE_GATE) repeated
 *               from its start (tinyser/features/tile.py)
 *
 * The constants (window, mel filters, DCT, standardisation, prosody and
 * voice-activity constants, adaptive tables, input quantisation, sizes) are
 * generated from the model's own metadata into tinyser_tables.h/.c by
 * `tinyser deploy`, so they always match the model.
 *
 * With TINYSER_USE_CMSIS_DSP defined (tinyser_config.h or -D; Cortex-M with
 * CMSIS-DSP), the frame is computed by arm_mfcc_f32 (and the prosody
 * autocorrelation by arm_rfft_fast_f32); otherwise by the portable code in
 * tinyser_frontend.c (its own real FFT). TINYSER_VAD 0 (tinyser_config.h)
 * turns voice activity off: every window then counts as speech.
 *
 * Usage:
 *   static tinyser_frontend_t fe;
 *   static tinyser_window_t window;
 *   tinyser_frame_t frame;
 *   tinyser_frontend_init(&fe);
 *   tinyser_window_init(&window);
 *   for each block of at most TINYSER_HOP_LENGTH samples:
 *     if (tinyser_frontend_push_i16(&fe, block, n, &frame) == 1)
 *       tinyser_window_push(&window, &frame);
 *     every TINYSER_INFERENCE_HOP_FRAMES frames once tinyser_window_full(&window):
 *       tinyser_window_copy(&window, model_input);   (int8, oldest frame first;
 *                                                      updates the adaptive state)
 *       if (tinyser_window_speech(&window)) run the model;
 */
#ifndef TINYSER_FRONTEND_H
#define TINYSER_FRONTEND_H

#include <stdint.h>

#include "tinyser_config.h"
#include "tinyser_tables.h"

#if defined(TINYSER_USE_CMSIS_DSP)
#include "arm_math.h"
#endif

#ifndef TINYSER_VAD
#define TINYSER_VAD 1
#endif

#ifndef TINYSER_PROSODY_DELTAS
#define TINYSER_PROSODY_DELTAS 0
#endif

/* The prosody analysis runs when the model has prosody channels or voice activity is on. */
#if TINYSER_N_PROSODY > 0 || TINYSER_VAD
#define TINYSER_ANALYSE 1
#else
#define TINYSER_ANALYSE 0
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

/* One feature frame: the raw (unstandardised) features, MFCCs first, then
 * the prosody channels; and whether the frame is speech (voice activity). */
typedef struct {
  float features[TINYSER_N_FEATURES];
  uint8_t speech;
} tinyser_frame_t;

/* The feature extractor: a ring of the last FRAME_LENGTH samples, the
 * buffers one frame is transformed in, and the voice-activity floor. */
typedef struct {
  float history[TINYSER_FRAME_LENGTH]; /* ring of the last FRAME_LENGTH samples */
  float frame[TINYSER_FRAME_LENGTH];   /* the frame being transformed (overwritten) */
  float scratch[TINYSER_SCRATCH_FLOATS]; /* spectrum, then mel energies */
  float mfcc[TINYSER_N_FEATURES];      /* raw features of the last frame (MFCCs, then prosody) */
  float prosody[3];                    /* semitones, voicing strength, loudness (dB) of the last frame */
  float vad_floor;                     /* noise floor (dB) of the stream */
  uint32_t pos;                        /* where the next sample goes in history */
  uint32_t until_frame;                /* samples still needed for the next frame */
  uint32_t frames;                     /* frames computed since init (saturates) */
  uint32_t speech;                     /* whether the last frame is speech */
#if defined(TINYSER_USE_CMSIS_DSP)
  arm_mfcc_instance_f32 cmsis;
#if TINYSER_ANALYSE
  arm_rfft_fast_instance_f32 rfft;
#endif
#endif
} tinyser_frontend_t;

/* The model's input window: the last TINYSER_N_FRAMES raw frames, a ring, with
 * the adaptive standardisation's running state. */
typedef struct {
  float rows[TINYSER_N_FRAMES * TINYSER_N_FEATURES];
  uint8_t speech[TINYSER_N_FRAMES];
  uint32_t next;  /* the row written next */
  uint32_t count; /* rows held, at most TINYSER_N_FRAMES */
  uint32_t fresh; /* rows pushed since the last tinyser_window_copy, at most TINYSER_N_FRAMES */
#if TINYSER_ADAPTIVE
  float mu[TINYSER_N_FEATURES]; /* running mean */
  float sq[TINYSER_N_FEATURES]; /* running mean square */
#endif
} tinyser_window_t;

/* Reset the frontend. Returns 0, or -1 if CMSIS-DSP refused the tables. */
int tinyser_frontend_init(tinyser_frontend_t *fe);

/* Push n <= TINYSER_HOP_LENGTH samples (floats in [-1, 1)). Returns 1 when a
 * frame was completed and written to out, 0 when not, -1 when n is too large. */
int tinyser_frontend_push_f32(tinyser_frontend_t *fe, const float *samples, uint32_t n, tinyser_frame_t *out);

/* The same for 16-bit PCM (sample / 32768, as tinyser reads PCM files). */
int tinyser_frontend_push_i16(tinyser_frontend_t *fe, const int16_t *samples, uint32_t n, tinyser_frame_t *out);

/* Raw MFCCs of one frame of TINYSER_FRAME_LENGTH samples, left in fe->mfcc;
 * fe->frame is the input and holds the frame's spectrum magnitude after. */
void tinyser_frontend_mfcc(tinyser_frontend_t *fe);

#if TINYSER_ANALYSE
/* Prosody of the frame whose magnitude tinyser_frontend_mfcc left in fe->frame:
 * fe->prosody, the prosody channels of fe->mfcc, and (voice activity) fe->speech. */
void tinyser_frontend_prosody(tinyser_frontend_t *fe);
#endif

/* Standardise TINYSER_N_FEATURES raw features with the fixed statistics and quantise them to int8. */
void tinyser_quantize(const float *features, int8_t *out);

void tinyser_window_init(tinyser_window_t *w);
void tinyser_window_push(tinyser_window_t *w, const tinyser_frame_t *frame);
int tinyser_window_full(const tinyser_window_t *w);
/* 1 when at least TINYSER_VAD_MIN_FRAMES of the window's frames are speech (always 1 without TINYSER_VAD). */
int tinyser_window_speech(const tinyser_window_t *w);
/* The model input (frames x features, oldest first, int8): with adaptive
 * standardisation the running state is first updated from the frames pushed
 * since the previous call. Call it once per model window, speech or not. */
void tinyser_window_copy(tinyser_window_t *w, int8_t *input);

/* Each classification balanced over the classes by those before it
 * (tinyser.metrics.RunningBalance): for a listener who, over a few dozen
 * utterances, voices the emotions about evenly, it removes the lean the model
 * has for that voice; a mostly neutral listener would be pushed away from
 * neutral. Call tinyser_balance once per utterance (e.g. with the mean of its
 * windows' scores); time_constant is in such calls (tinyser uses 50). */
typedef struct {
  float mean[TINYSER_N_CLASSES]; /* running mean of the scores passed, started uniform */
  float forget;                  /* 1 - exp(-1 / time_constant) */
  uint32_t heard;                /* calls so far (saturates) */
} tinyser_balance_t;

void tinyser_balance_init(tinyser_balance_t *b, float time_constant);
/* scores (TINYSER_N_CLASSES probabilities) divided by the running mean and
 * renormalised, in place; then the running mean learns the scores as given. */
void tinyser_balance(tinyser_balance_t *b, float *scores);

#ifdef __cplusplus
}
#endif

#endif /* TINYSER_FRONTEND_H */
