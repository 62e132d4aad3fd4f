// tinyser runtime: see tinyser_runtime.h.
#include "tinyser_runtime.h"

#include "model_data.h"
#include "model_ops.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/schema/schema_generated.h"
#include "tinyser_frontend.h"

namespace {

alignas(16) uint8_t tensor_arena[TINYSER_ARENA_SIZE];
tinyser_frontend_t frontend;
tinyser_window_t window;
tinyser_frame_t frame;
uint32_t frames_since_inference = 0;
tflite::MicroInterpreter *interpreter = nullptr;

}  // namespace

#ifdef TINYSER_INPUT_HOOK
// A test harness (tinyser deploy verify) sees each model input just before the model runs;
// -DTINYSER_INPUT_HOOK=function_name. Nothing is compiled in otherwise.
extern "C" void TINYSER_INPUT_HOOK(const int8_t *input);
#endif

const char *tinyser_begin() {
  if (interpreter != nullptr) return nullptr;  // already running: the resolver and interpreter are static
  const tflite::Model *model = tflite::GetModel(g_model);
  if (model->version() != TFLITE_SCHEMA_VERSION) {
    return "the model's schema version is not the one this TensorFlow Lite Micro reads";
  }
  static TinyserOpResolver resolver;
  if (RegisterTinyserOps(resolver) != kTfLiteOk) {
    return "could not register the model's ops";
  }
  static tflite::MicroInterpreter static_interpreter(model, resolver, tensor_arena, TINYSER_ARENA_SIZE);
  if (static_interpreter.AllocateTensors() != kTfLiteOk) {
    return "AllocateTensors failed: raise TINYSER_ARENA_SIZE in tinyser_config.h";
  }
  const TfLiteTensor *input = static_interpreter.input(0);
  const TfLiteTensor *output = static_interpreter.output(0);
  if (input->type != kTfLiteInt8 || input->bytes != TINYSER_N_FRAMES * TINYSER_N_FEATURES) {
    return "the model's input is not the int8 frames x coefficients the frontend writes";
  }
  if (output->type != kTfLiteInt8 || output->bytes != TINYSER_N_CLASSES) {
    return "the model's output is not one int8 score per class";
  }
  if (tinyser_frontend_init(&frontend) != 0) {
    return "CMSIS-DSP refused the MFCC tables";
  }
  interpreter = &static_interpreter;
  tinyser_reset();
  return nullptr;
}

void tinyser_reset() {
  tinyser_frontend_init(&frontend);
  tinyser_window_init(&window);
  frames_since_inference = 0;
}

bool tinyser_push(const int16_t *samples, uint32_t n, tinyser_result_t *result) {
  if (interpreter == nullptr || tinyser_frontend_push_i16(&frontend, samples, n, &frame) != 1) {
    return false;
  }
  tinyser_window_push(&window, &frame);
  if (++frames_since_inference < TINYSER_INFERENCE_HOP_FRAMES || !tinyser_window_full(&window)) {
    return false;
  }
  frames_since_inference = 0;
  // every window updates the adaptive standardisation; only windows with speech are scored
  tinyser_window_copy(&window, interpreter->input(0)->data.int8);
  if (!tinyser_window_speech(&window)) {
    return false;
  }
#ifdef TINYSER_INPUT_HOOK
  TINYSER_INPUT_HOOK(interpreter->input(0)->data.int8);
#endif
  if (interpreter->Invoke() != kTfLiteOk) {
    return false;
  }
  const int8_t *scores = interpreter->output(0)->data.int8;
  result->label = 0;
  for (int i = 0; i < TINYSER_N_CLASSES; i++) {
    result->scores[i] = (scores[i] - TINYSER_OUTPUT_ZERO_POINT) * TINYSER_OUTPUT_SCALE;
    if (scores[i] > scores[result->label]) result->label = i;
  }
  return true;
}

const char *tinyser_label(int index) {
  return (index >= 0 && index < TINYSER_N_CLASSES) ? tinyser_labels[index] : "?";
}
