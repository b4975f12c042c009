/* From results files to the data files that the gnuplot templates in
 * plots/ read, and the merged view of the cells that `report` tabulates.
 *
 * This stage reads results files through the results model
 * (results_model.h) and never runs a loader. What it writes into a data
 * directory is the templates' whole input, so each template works on its
 * own:
 *
 *     gnuplot -c plots/memory.gp DATADIR OUTBASE   ->  OUTBASE.png, OUTBASE.svg
 *
 * DATADIR holds series.gp (gnuplot variables: the series (loaders) with
 * their fixed colours, dash and point types, the subtitle, the ceilings,
 * which data blocks belong to which series) and whitespace-separated
 * *.dat files, one block per series (blocks separated by two blank lines,
 * as gnuplot's `index` counts them). Missing values are written as "?". The columns of
 * each file are listed in a comment at its top.
 */
#ifndef CB_PLOTDATA_H
#define CB_PLOTDATA_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "error.h"
#include "results_model.h"

enum cb_chart {
	CB_CHART_MEMORY,
	CB_CHART_TIME,
	CB_CHART_THROUGHPUT,
	CB_CHART_TIMELINE,
	CB_CHART_VRAM,
	CB_CHART_COMPARE,
	CB_CHART_LAZY,
	CB_CHART_STORAGE,
	CB_CHART_RANKS_MEMORY,
	CB_CHART_RANKS_BANDWIDTH,
	CB_CHART_COUNT
};

/* "memory", "time", ...: the template's and the chart files' base name. */
const char *cb_chart_name(enum cb_chart chart);

/* A series' look on every chart, fixed by its name so colours stay the
 * same across charts and runs: known loaders from a table (Okabe-Ito and
 * Tol colours, safe for colour-blind readers), other names (a loader the
 * table does not know, one setting of a loader: "safetensors-gpu:mode=
 * register") from a hash of the name. Dash and point types differ too, so
 * charts read in greyscale. */
struct cb_plot_style {
	unsigned rgb;     /* 0xRRGGBB */
	int dash;         /* gnuplot dashtype 1..N */
	int point;        /* gnuplot pointtype, a filled shape */
	int hollow_point; /* the same shape, open */
};
void cb_plot_style_of(const char *loader, struct cb_plot_style *out);

/* One cell of the merged runs. */
struct cb_pcell {
	const struct cb_results_cell *cell; /* borrowed from a file of the set */
	size_t series;                      /* into cb_plotset.series */
	const char *label;                  /* cb_plotset.series[series] */
};

/* The cells of one or more results files (results_model.h). A cell that
 * appears in two files (the same key: loader, options, dataset, cache and
 * device) is taken from the later one: a re-run replaces what it measured
 * again. Cells keep their order of first appearance. A series is what a
 * chart draws as one line or one bar colour: a loader, or, where cells of
 * a loader differ only by their options, one setting of it, named by
 * cb_results_cell_label over the merged cells. */
struct cb_plotset {
	const struct cb_results_file *const *files; /* borrowed; n_files of them */
	size_t n_files;
	struct cb_pcell *cells; /* owned */
	size_t n_cells;
	char **series; /* owned labels; palette order */
	size_t n_series;
	double *sizes; /* owned; distinct model sizes, ascending */
	size_t n_sizes;
	/* The last file's calibration with one, else the last file's (not
	 * present: every figure NaN); borrowed, never NULL. */
	const struct cb_results_calibration *calibration;
	/* Series skipped in every cell (loaders not built or not runnable
	 * where the results were taken): left out of the charts, which say how
	 * many in their subtitle; the report lists each with its reason. */
	size_t n_not_run;
};

/* Builds the merged view of n_files >= 1 files, which must outlive it.
 * CB_ENOMEM only. The set is the caller's, for cb_plotset_free. */
CB_NODISCARD int cb_plotset_build(const struct cb_results_file *const *files, size_t n_files,
				  struct cb_plotset *set, struct cb_error *err);
void cb_plotset_free(struct cb_plotset *set);

/* True when the cell has figures to draw (cb_results_cell_measured). */
bool cb_pcell_measured(const struct cb_pcell *c);

/* The cell for (series, size, cache), or NULL. */
const struct cb_pcell *cb_plotset_find(const struct cb_plotset *set, size_t series,
				       double model_bytes, const char *cache);

/* Writes series.gp and the results charts' *.dat files into `dir` (which
 * must exist). *charts_out gets a bit (1u << chart) for each chart that has
 * something to show: memory, time and throughput whenever there are cells,
 * timeline when a trial holds a timeline, vram when a cell has VRAM
 * figures. */
CB_NODISCARD int cb_plotdata_write(const struct cb_plotset *set, const char *dir,
				   unsigned *charts_out, struct cb_error *err);

/* The comparison document `ckptbench compare --format json` writes, read
 * tolerantly (keys it does not know are ignored):
 *   {"schema": "ckptbench-compare/1" (any "...compare..." schema),
 *    "base": {"path", "timestamp", "machine"}?, "head": {...}?,
 *    "cells": [{"loader", "dataset", "cache", "device", "model_bytes"?,
 *               "base": {"median_s", "ci95_s": [lo, hi], "n"},
 *               "head": {"median_s", "ci95_s": [lo, hi], "n"},
 *               "ratio"?, "p"?, "verdict": "regression" | "improvement" | "~"
 *                                          | "too-few-trials" | ...}]}
 * Flat spellings ("base_median_s", "base_ci95_s", "head_...") are read too.
 * True when `doc` looks like one. */
bool cb_plotdata_is_compare(const json_t *doc);

/* Writes compare.gp and compare.dat into `dir`; `path` names the document
 * in errors. CB_EFORMAT when no cell has both medians. */
CB_NODISCARD int cb_plotdata_write_compare(const json_t *doc, const char *path, const char *dir,
					   struct cb_error *err);

/* "64 MiB", "1 GiB", "1.5 GiB": a model size as the charts label it. */
void cb_plot_size_label(double bytes, char *buf, size_t size);

/* The subtitle every chart carries: machine, then the date(s) of the runs. */
void cb_plot_subtitle(const struct cb_plotset *set, char *buf, size_t size);

/* Rendering (cmd_plot.c): runs gnuplot on the templates for each chart in
 * `charts` with the data in `data_dir`, writing DIR/NAME.png and .svg.
 * Templates are found as loaders/base/resources.h says ($CKPTBENCH_PLOTS,
 * the source tree's plots/ from a build directory, else datadir/ckptbench/plots
 * relative to the installed binary). gnuplot not
 * in PATH is CB_EUNAVAILABLE with a message naming the package. */
CB_NODISCARD int cb_plot_render(const char *data_dir, const char *out_dir, unsigned charts,
				struct cb_error *err);

/* Draws a set (and, when `compare` is not NULL, a comparison document
 * read from compare_path): the data into DIR/data/ and, unless data_only,
 * the charts into DIR. *charts_out gets the bits of the charts made. The
 * set may be NULL when there is only a comparison. */
CB_NODISCARD int cb_plot_draw(const struct cb_plotset *set, const json_t *compare,
			      const char *compare_path, const char *dir, bool data_only,
			      unsigned *charts_out, struct cb_error *err);

/* The whole plot stage (cmd_plot.c): loads the files (results files and at
 * most one comparison), builds the set and draws it (cb_plot_draw). */
CB_NODISCARD int cb_plot_make(char **files, size_t n_files, const char *dir, bool data_only,
			      unsigned *charts_out, struct cb_error *err);

#endif
