// tinyser runtime: audio in, emotion out, on TensorFlow Lite Micro.
//
// Feeds audio through the streaming frontend (tinyser_frontend.h) into the
// model's input window and runs the model every TINYSER_INFERENCE_HOP_FRAMES
// frames once the window is full. The interpreter registers exactly the
// model's ops (model_ops.h) and works in a static arena of TINYSER_ARENA_SIZE
// bytes (tinyser_config.h).
//
//   const char *error = tinyser_begin();      // nullptr when ready
//   tinyser_result_t result;
//   for each block of at most TINYSER_HOP_LENGTH 16-bit samples:
//     if (tinyser_push(block, n, &result))
//       printf("%s\n", tinyser_label(result.label));
#ifndef TINYSER_RUNTIME_H
#define TINYSER_RUNTIME_H

#include <stdint.h>

#include "tinyser_config.h"
#include "tinyser_tables.h"

typedef struct {
  int label;                        // index of the most probable class
  float scores[TINYSER_N_CLASSES];  // class probabilities (the dequantised output)
} tinyser_result_t;

// Load the model and allocate its tensors; nullptr on success, else the reason.
const char *tinyser_begin();

// Feed n <= TINYSER_HOP_LENGTH samples of 16-bit PCM at TINYSER_SAMPLE_RATE;
// true when the model ran and `result` holds its new classification. The model
// runs every TINYSER_INFERENCE_HOP_FRAMES frames on windows with speech only
// (voice activity, tinyser_frontend.h; TINYSER_VAD 0 in tinyser_config.h
// scores every window).
bool tinyser_push(const int16_t *samples, uint32_t n, tinyser_result_t *result);

// Forget the audio heard so far (frontend, input window, hop counter), as
// after tinyser_begin(): the next classification needs a full window again.
void tinyser_reset();

// The name of class `index` (as in the model's metadata).
const char *tinyser_label(int index);

#endif  // TINYSER_RUNTIME_H
