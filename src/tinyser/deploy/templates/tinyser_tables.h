/* ${origin}: the constants of its cmsis_mfcc frontend (${window} window, HTK mel filters
 * ${fmin}-${fmax} Hz${prosody}), voice activity, ${standardisation} standardisation,
 * int8 quantisation and labels. Do not edit:
 * run `tinyser deploy` again for another model. */
#ifndef TINYSER_TABLES_H
#define TINYSER_TABLES_H

#include <stdint.h>

${macros}

#ifdef __cplusplus
extern "C" {
#endif

${declarations}
extern const char *const tinyser_labels[TINYSER_N_CLASSES];

#ifdef __cplusplus
}
#endif

#endif /* TINYSER_TABLES_H */
