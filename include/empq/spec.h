/* spec.h: the study spec (study.yaml) -> RunSpec.
 *
 * The spec is YAML; docs/spec.md describes every field. Loading is strict:
 * an unknown key, a duplicate key, a value of the wrong type or out of range,
 * a missing required field, a duplicate alias or a template with an unknown
 * placeholder is an error that names the key path and the 1-based line, e.g.
 *
 *   studies/x.yaml:14: key 'models[2].params.temprature' is not a known key
 *   studies/x.yaml:9: key 'selection.prompts' must be an integer, got 'abc'
 *
 * (models[N] counts the spec's own list from 0.) The resulting RunSpec holds
 * the human source first (unless human.include is false), then the spec's
 * models in order. */
#ifndef EMPQ_SPEC_H
#define EMPQ_SPEC_H

#include <stddef.h>
#include <stdint.h>

#include "empq.pb-c.h"
#include "empq/error.h"

/* Reads and parses the spec file at path (not NULL). Like empq_spec_parse
 * with origin = path and base_dir = the file's folder, and spec_path = path.
 * EMPQ_ENOTFOUND / EMPQ_EIO when the file cannot be read. */
int empq_spec_load(const char *path, Empq__RunSpec **out, empq_error *err);

/* Parses len bytes of YAML text (need not be NUL-terminated). origin names
 * the text in error messages (NULL: "<spec>"); base_dir (may be NULL: keep
 * relative paths as written) is the folder a relative dataset.path is
 * resolved against. dataset.path has its ${VAR} expanded here (an unset
 * variable is an error naming it); base_url keeps ${VAR} as written.
 *
 * On EMPQ_OK *out is the caller's, freed with
 * empq__run_spec__free_unpacked(*out, NULL); spec_yaml holds the text
 * verbatim; spec_path is not set (empq_spec_load sets it).
 * On failure *out is NULL and the code is EMPQ_EPARSE (YAML syntax),
 * EMPQ_ESPEC (the spec is wrong), EMPQ_EINVAL (NULL argument) or
 * EMPQ_ENOMEM, with err naming origin, line and key path. */
int empq_spec_parse(const char *text, size_t len, const char *origin, const char *base_dir,
                    Empq__RunSpec **out, empq_error *err);

/* Replaces each ${VAR} in s (not NULL) with getenv(VAR); "$$" is a literal
 * "$", and a "$" before anything else is kept. VAR is [A-Za-z_][A-Za-z0-9_]*.
 * On EMPQ_OK *out is a new string the caller frees with free().
 * On failure *out is NULL and the code is EMPQ_ENOTFOUND (a variable is not
 * set; err names it), EMPQ_EPARSE (unclosed "${" or a bad name) or
 * EMPQ_ENOMEM. */
int empq_expand_env(const char *s, char **out, empq_error *err);

/* The most jobs one run can hold: prompts x models x samples (the largest
 * samples of the run's models) must be at most this. The job index is
 * 32-bit and UINT32_MAX means "no job" in the broker's job table. */
#define EMPQ_SPEC_MAX_JOBS 4294967294ull

/* Checks the job count of spec (a RunSpec from empq_spec_parse or _load,
 * with its spec_yaml) for n_prompts selected prompts: n_prompts x models x
 * samples must be at most EMPQ_SPEC_MAX_JOBS (parsing already checked it
 * with the prompts the spec fixes itself). Returns EMPQ_OK, EMPQ_ESPEC with
 * err "origin:LINE: key 'models[N].samples': P prompts (...) x M sources x
 * S samples = T jobs, more than a run can hold (...)" (origin may be NULL:
 * "<spec>"), EMPQ_EINVAL (NULL spec or no spec_yaml) or EMPQ_ENOMEM. */
int empq_spec_check_jobs(const Empq__RunSpec *spec, uint64_t n_prompts, const char *origin, empq_error *err);

/* Index of the model with this alias in spec->models, or -1 when there is
 * none (or spec or alias is NULL). */
int empq_spec_model_index(const Empq__RunSpec *spec, const char *alias);

#endif
