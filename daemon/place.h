/*
 * place.h - where a new file should start: in memory, or straight on disk
 * because it will most likely outgrow the room that is left.
 */
#ifndef EPHD_PLACE_H
#define EPHD_PLACE_H

#include <stdint.h>

/* Record a file just created (idx/gen when in memory, else idx = -1; path
 * may be "" for an unnamed file).  Its size is read back when predicting. */
void place_note(int64_t idx, uint32_t gen, const char *path);
/* 1 when the new file at path should go straight to disk: the budget is
 * zero, or the files created last were larger than the room the budget has
 * left (paper §5.2.1: a file that does not fit is not brought into
 * memory).  A file sent to disk is noted here; one created in memory must
 * be noted by the caller. */
int place_predict_disk(const char *path);
/* Creates sent to disk by the prediction (for stats). */
uint64_t place_predicted(void);

#endif
