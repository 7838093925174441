/* SPDX-License-Identifier: MIT */
/*
 * render.h - how ckptd's answers are shown to people (render.c): the
 * operations table, one operation, the "Checkpoint Details" block, checkpoint
 * statistics, events and log lines. Pure functions of the JSON and "now", so
 * the golden tests pin them down exactly.
 */
#ifndef CKPT_RENDER_H
#define CKPT_RENDER_H

#include "ckpt.h"

void ckpt_render_ops_list(struct ckpt_ctx *c, json_t *j, FILE *f);
void ckpt_render_op(struct ckpt_ctx *c, json_t *op, FILE *f);
/* The CHECKPOINT cell: "epoch 29", "step 500", a version name, or "-". */
void ckpt_render_checkpoint_cell(json_t *cp, char *buf, size_t len);
/* The operations guide's "Checkpoint Details": j is GET /checkpoints/{id},
 * op the operation (or NULL), tstate the checkpoint's trainer_state.json (or
 * NULL). Returns -1 (after saying so) when the operation has no checkpoint. */
int ckpt_render_checkpoint_details(struct ckpt_ctx *c, const char *id, json_t *j, json_t *op,
				   json_t *tstate, FILE *f);
void ckpt_render_checkpoint_stats(struct ckpt_ctx *c, json_t *j, FILE *f);
void ckpt_render_event(struct ckpt_ctx *c, json_t *ev, FILE *f);
void ckpt_render_log_line(json_t *it, FILE *f);

/* An operation's fields, whatever key spelling ckptd uses. */
const char *ckpt_op_id(json_t *op);
const char *ckpt_op_status(json_t *op);
bool ckpt_op_resumable(json_t *op);

#endif /* CKPT_RENDER_H */
