/* Host driver for tests/test_deploy.py: runs the C frontend over audio segments.
 *
 * stdin:  int32 n_segments, int32 n_samples, then n_segments * n_samples float32 samples
 * stdout: per segment, the model input the C frontend builds, TINYSER_N_FRAMES x
 *         TINYSER_N_FEATURES int8 (oldest frame first); with the argument "mfcc",
 *         the raw features of those frames as float32 instead.
 * Each segment starts from a fresh frontend and is pushed one hop at a time
 * as float samples, as a device streams it; with the argument "i16", as 16-bit
 * PCM (sample * 32768) in blocks of 100 samples instead.
 * With the arguments "stream H", each segment is a stream of which every
 * model window is written, the first when the window is full and then every H
 * frames, as the int8 input followed by one byte: 1 when the window is speech.
 * Exit status 2: a segment did not give N_FRAMES frames (the other modes).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tinyser_frontend.h"

static tinyser_frontend_t fe;
static tinyser_window_t window;
static int8_t input[TINYSER_N_FRAMES * TINYSER_N_FEATURES];
static float raw[TINYSER_N_FRAMES * TINYSER_N_FEATURES];
static int16_t pcm[TINYSER_HOP_LENGTH];

/* Push samples[0..n) (n <= TINYSER_HOP_LENGTH) as floats or as 16-bit PCM. */
static int push(const float *samples, int32_t n, int as_pcm, tinyser_frame_t *frame) {
  int32_t i;
  if (!as_pcm) return tinyser_frontend_push_f32(&fe, samples, (uint32_t)n, frame);
  for (i = 0; i < n; i++) pcm[i] = (int16_t)(samples[i] * 32768.0f);
  return tinyser_frontend_push_i16(&fe, pcm, (uint32_t)n, frame);
}

int main(int argc, char **argv) {
  int32_t head[2];
  int want_mfcc = argc > 1 && strcmp(argv[1], "mfcc") == 0;
  int as_pcm = argc > 1 && strcmp(argv[1], "i16") == 0;
  int stream_hop = argc > 2 && strcmp(argv[1], "stream") == 0 ? atoi(argv[2]) : 0;
  int32_t block = as_pcm ? 100 : TINYSER_HOP_LENGTH;
  float *samples;
  int32_t s;
  if (fread(head, sizeof(int32_t), 2, stdin) != 2 || head[0] < 0 || head[1] <= 0) return 1;
  if (argc > 1 && strcmp(argv[1], "stream") == 0 && stream_hop <= 0) return 1;
  samples = (float *)malloc((size_t)head[1] * sizeof(float));
  if (samples == NULL) return 1;
  fprintf(stderr, "sizeof(tinyser_frontend_t)=%u sizeof(tinyser_window_t)=%u\n", (unsigned)sizeof(tinyser_frontend_t),
          (unsigned)sizeof(tinyser_window_t));
  for (s = 0; s < head[0]; s++) {
    int32_t start, frames = 0, since = 0;
    tinyser_frame_t frame;
    if (fread(samples, sizeof(float), (size_t)head[1], stdin) != (size_t)head[1]) return 1;
    if (tinyser_frontend_init(&fe) != 0) return 1;
    tinyser_window_init(&window);
    for (start = 0; start < head[1]; start += block) {
      int32_t n = head[1] - start < block ? head[1] - start : block;
      if (push(samples + start, n, as_pcm, &frame) == 1) {
        if (frames < TINYSER_N_FRAMES) memcpy(raw + frames * TINYSER_N_FEATURES, frame.features, sizeof(frame.features));
        tinyser_window_push(&window, &frame);
        frames++;
        since++;
        if (stream_hop && tinyser_window_full(&window) && (frames == TINYSER_N_FRAMES || since >= stream_hop)) {
          uint8_t speech = (uint8_t)tinyser_window_speech(&window);
          tinyser_window_copy(&window, input);
          fwrite(input, 1, sizeof(input), stdout);
          fwrite(&speech, 1, 1, stdout);
          since = 0;
        }
      }
    }
    if (stream_hop) continue;
    if (frames != TINYSER_N_FRAMES) return 2;
    tinyser_window_copy(&window, input);
    if (want_mfcc) {
      fwrite(raw, sizeof(float), TINYSER_N_FRAMES * TINYSER_N_FEATURES, stdout);
    } else {
      fwrite(input, 1, sizeof(input), stdout);
    }
  }
  free(samples);
  return 0;
}
