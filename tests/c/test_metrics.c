/* Metrics against hand-worked values; bootstrap intervals against the
 * normal approximation of a binomial rate; cluster statistics by hand;
 * the JSON form read back with the parser. */
#include <stdlib.h>
#include "strata/json.h"
#include "strata/metrics.h"
#include "strata/rng.h"
#include "testing.h"

static st_tensor *ids(int64_t n, const int64_t *v)
{
    st_tensor *t = NULL;
    CHECK_OK(st_tensor_from_data(ST_I64, 1, &n, v, (size_t)n * sizeof *v, &t));
    return t;
}

/* Worked by hand in the comments (docs/metrics.md repeats it). */
static const int64_t T[8] = {0, 1, 2, 1, 0, 2, 1, 1}; /* truth */
static const int64_t B[8] = {0, 1, 2, 2, 0, 1, 1, 0}; /* baseline */
static const int64_t S[8] = {0, 1, 1, 2, 0, 1, 0, 0}; /* surrogate */

static void test_hand_worked(void)
{
    st_tensor *t = ids(8, T), *b = ids(8, B), *s = ids(8, S), *lay = NULL;
    int64_t layers[16];
    memcpy(layers, T, sizeof T);     /* layer 0 predicts the truth */
    memcpy(layers + 8, B, sizeof B); /* layer 1 predicts the baseline */
    CHECK_OK(st_tensor_from_data(ST_I64, 2, (int64_t[]){2, 8}, layers, sizeof layers, &lay));
    st_eval_options o = st_eval_defaults(NULL);
    o.bootstrap = 0;
    st_evaluation *ev = NULL;
    /* 4 classes: class 3 never predicted by the baseline */
    CHECK_OK(st_evaluate(t, b, s, lay, 4, &o, &ev));
    if (!ev) return;
    CHECK_CLOSE(ev->accuracy, 3. / 8, 0, 1e-15);         /* positions 0, 1, 4 */
    CHECK_CLOSE(ev->fidelity, 6. / 8, 0, 1e-15);         /* all but 2 and 6 */
    CHECK_CLOSE(ev->baseline_accuracy, 5. / 8, 0, 1e-15); /* all but 3, 5, 7 */
    CHECK(ev->accuracy_ci.lo == ev->accuracy && ev->accuracy_ci.hi == ev->accuracy);
    CHECK(ev->n_layers == 2);
    CHECK_CLOSE(ev->layer_accuracy[0], 1, 0, 0);
    CHECK_CLOSE(ev->layer_fidelity[0], 5. / 8, 0, 1e-15);
    CHECK_CLOSE(ev->layer_accuracy[1], 5. / 8, 0, 1e-15);
    CHECK_CLOSE(ev->layer_fidelity[1], 1, 0, 0);
    /* baseline class 0: positions 0, 4, 7 -> surrogate 0, 0, 0;
     * class 1: 1, 5, 6 -> 1, 1, 0; class 2: 2, 3 -> 1, 2; class 3: none */
    CHECK(ev->class_count[0] == 3 && ev->class_count[1] == 3 && ev->class_count[2] == 2 && ev->class_count[3] == 0);
    CHECK_CLOSE(ev->class_fidelity[0], 1, 0, 0);
    CHECK_CLOSE(ev->class_fidelity[1], 2. / 3, 0, 1e-15);
    CHECK_CLOSE(ev->class_fidelity[2], .5, 0, 0);
    CHECK(isnan(ev->class_fidelity[3]));
    const int64_t conf[16] = {2, 0, 0, 0, 2, 1, 1, 0, 0, 2, 0, 0, 0, 0, 0, 0};
    CHECK(memcmp(ev->confusion, conf, sizeof conf) == 0);
    const int64_t agree[16] = {3, 0, 0, 0, 1, 2, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0};
    CHECK(memcmp(ev->agreement, agree, sizeof agree) == 0);

    /* JSON read back */
    st_json_writer *w = NULL;
    CHECK_OK(st_json_writer_new(false, &w));
    const char *names[4] = {"cat", "dog", "ship", "frog"}, *lnames[2] = {"stem", "layer3"};
    st_evaluation_write_json(w, ev, names, lnames);
    const char *text = NULL;
    size_t len = 0;
    CHECK_OK(st_json_writer_text(w, &text, &len));
    st_json *doc = NULL;
    if (text) CHECK_OK(st_json_parse(text, len, &doc));
    if (doc) {
        double v = 0;
        int64_t n = 0;
        CHECK_OK(st_json_get_int(doc, "n", &n));
        CHECK(n == 8);
        CHECK_OK(st_json_get_number(st_json_get(doc, "fidelity"), "value", &v));
        CHECK(v == 0.75);
        const st_json *pc = st_json_get(doc, "per_class");
        CHECK(st_json_size(pc) == 4);
        CHECK(st_json_type_of(st_json_get(st_json_at(pc, 3), "fidelity")) == ST_JSON_NULL);
        CHECK(strcmp(st_json_string(st_json_get(st_json_at(pc, 2), "name")), "ship") == 0);
        CHECK(strcmp(st_json_string(st_json_get(st_json_at(st_json_get(doc, "layers"), 1), "name")), "layer3") == 0);
        const st_json *cm = st_json_get(doc, "confusion");
        CHECK(st_json_size(cm) == 4 && st_json_number(st_json_at(st_json_at(cm, 1), 0)) == 2);
        st_json_free(doc);
    }
    st_json_writer_free(w);

    char *sum = NULL;
    CHECK_OK(st_evaluation_summary(ev, names, lnames, &sum));
    if (sum) {
        CHECK(strstr(sum, "fidelity") && strstr(sum, "0.7500") && strstr(sum, "0.3750") && strstr(sum, "0.6250"));
        CHECK(strstr(sum, "layer3") && strstr(sum, "frog"));
        free(sum);
    }
    st_evaluation_free(ev);

    double a = 0;
    CHECK_OK(st_agreement(s, t, &a));
    CHECK_CLOSE(a, 3. / 8, 0, 1e-15);
    st_tensor_free(t);
    st_tensor_free(b);
    st_tensor_free(s);
    st_tensor_free(lay);
}

/* n examples with the surrogate right on exactly round(n * p) of them
 * (and agreeing with the baseline on the same ones). */
static st_evaluation *rate_eval(int64_t n, double p, uint64_t seed, int64_t B)
{
    int64_t *t = calloc((size_t)n, sizeof *t), *s = calloc((size_t)n, sizeof *s);
    for (int64_t i = (int64_t)llround((double)n * p); i < n; i++) s[i] = 1;
    st_tensor *tt = ids(n, t), *st = ids(n, s);
    st_rng rng;
    st_rng_seed(&rng, seed);
    st_eval_options o = st_eval_defaults(&rng);
    o.bootstrap = B;
    st_evaluation *ev = NULL;
    CHECK_OK(st_evaluate(tt, tt, st, NULL, 2, &o, &ev));
    st_tensor_free(tt);
    st_tensor_free(st);
    free(t);
    free(s);
    return ev;
}

static void test_bootstrap(void)
{
    st_evaluation *small = rate_eval(100, .8, 1, 1000), *large = rate_eval(10000, .8, 1, 1000);
    st_evaluation *again = rate_eval(100, .8, 1, 1000), *other = rate_eval(100, .8, 2, 1000);
    if (!small || !large || !again || !other) return;
    CHECK(small->bootstrap == 1000 && small->level == .95);
    /* contains the estimate */
    CHECK(small->accuracy_ci.lo < .8 && small->accuracy_ci.hi > .8);
    CHECK(large->accuracy_ci.lo < .8 && large->accuracy_ci.hi > .8);
    CHECK(small->fidelity_ci.lo < .8 && small->fidelity_ci.hi > .8);
    /* the baseline is the truth here: its interval is exactly [1, 1] */
    CHECK(small->baseline_accuracy_ci.lo == 1 && small->baseline_accuracy_ci.hi == 1);
    /* width close to the binomial normal approximation 2 * 1.96 *
     * sqrt(p (1-p) / n): 0.157 for n = 100, 0.0157 for n = 10000 */
    double ws = small->accuracy_ci.hi - small->accuracy_ci.lo, wl = large->accuracy_ci.hi - large->accuracy_ci.lo;
    CHECK(fabs(ws / 0.1568 - 1) < 0.2);
    CHECK(fabs(wl / 0.01568 - 1) < 0.2);
    CHECK(wl < ws / 5);
    /* same seed, same interval; another seed, another one */
    CHECK(again->accuracy_ci.lo == small->accuracy_ci.lo && again->accuracy_ci.hi == small->accuracy_ci.hi);
    CHECK(other->accuracy_ci.lo != small->accuracy_ci.lo || other->accuracy_ci.hi != small->accuracy_ci.hi);
    /* the same resamples serve accuracy and fidelity (identical here) */
    CHECK(small->fidelity_ci.lo == small->accuracy_ci.lo && small->fidelity_ci.hi == small->accuracy_ci.hi);
    st_evaluation_free(small);
    st_evaluation_free(large);
    st_evaluation_free(again);
    st_evaluation_free(other);

    /* a 90% interval lies inside the 95% one (same resamples) */
    st_evaluation *e95 = rate_eval(400, .7, 5, 500);
    int64_t t[400] = {0}, s[400];
    for (int i = 0; i < 400; i++) s[i] = i < 280 ? 0 : 1;
    st_tensor *tt = ids(400, t), *stt = ids(400, s);
    st_rng rng;
    st_rng_seed(&rng, 5);
    st_eval_options o = st_eval_defaults(&rng);
    o.bootstrap = 500;
    o.level = .9;
    st_evaluation *e90 = NULL;
    CHECK_OK(st_evaluate(tt, tt, stt, NULL, 2, &o, &e90));
    if (e95 && e90)
        CHECK(e90->accuracy_ci.lo >= e95->accuracy_ci.lo && e90->accuracy_ci.hi <= e95->accuracy_ci.hi &&
              e90->accuracy_ci.hi - e90->accuracy_ci.lo < e95->accuracy_ci.hi - e95->accuracy_ci.lo);
    st_evaluation_free(e95);
    st_evaluation_free(e90);
    st_tensor_free(tt);
    st_tensor_free(stt);
}

static void test_errors(void)
{
    st_tensor *t = ids(8, T), *s = ids(8, S), *short_ = ids(3, S), *bad = ids(8, (int64_t[]){0, 1, 2, 3, 4, 5, 6, 7});
    st_evaluation *ev = NULL;
    st_eval_options o = st_eval_defaults(NULL);
    CHECK_FAILS(st_evaluate(t, t, s, NULL, 3, &o, &ev), ST_EINVAL, "needs an rng");
    o.bootstrap = 0;
    CHECK_FAILS(st_evaluate(t, short_, s, NULL, 3, &o, &ev), ST_ESHAPE, "baseline predictions: 8 entries expected");
    CHECK_FAILS(st_evaluate(t, t, bad, NULL, 3, &o, &ev), ST_EINVAL, "surrogate predictions: entry 3 is 3");
    st_tensor *lay = NULL;
    CHECK_OK(st_tensor_zeros(ST_I64, 2, (int64_t[]){2, 7}, &lay));
    CHECK_FAILS(st_evaluate(t, t, s, lay, 3, &o, &ev), ST_ESHAPE, "[L, 8] expected, got [2,7]");
    st_tensor *f = NULL;
    CHECK_OK(st_tensor_zeros(ST_F32, 1, (int64_t[]){8}, &f));
    CHECK_FAILS(st_evaluate(f, t, s, NULL, 3, &o, &ev), ST_EDTYPE, "i32 or i64");
    o.level = 1;
    CHECK_FAILS(st_evaluate(t, t, s, NULL, 3, &o, &ev), ST_EINVAL, "level");
    CHECK(ev == NULL);
    st_evaluation_free(NULL);
    st_tensor_free(t);
    st_tensor_free(s);
    st_tensor_free(short_);
    st_tensor_free(bad);
    st_tensor_free(lay);
    st_tensor_free(f);
}

static void test_cluster_counts_and_stats(void)
{
    /* counts from labels: clusters {0,0,2,2,2}, classes {1,1,0,3,3} */
    st_tensor *c = ids(5, (int64_t[]){0, 0, 2, 2, 2}), *y = ids(5, (int64_t[]){1, 1, 0, 3, 3}), *k = NULL;
    CHECK_OK(st_cluster_counts(c, 3, y, 4, &k));
    const int64_t want[12] = {0, 2, 0, 0, 0, 0, 0, 0, 1, 0, 0, 2};
    if (k) CHECK(memcmp(k->data, want, sizeof want) == 0);
    CHECK_FAILS(st_cluster_counts(c, 2, y, 4, &k), ST_EINVAL, "cluster ids: entry 2 is 2, outside [0, 2)");
    st_tensor_free(k);
    st_tensor_free(c);
    st_tensor_free(y);

    const int64_t counts[5][4] = {{3, 1, 0, 0}, {0, 0, 0, 0}, {2, 2, 2, 2}, {0, 5, 0, 0}, {1, 2, 3, 4}};
    st_tensor *ct = NULL;
    CHECK_OK(st_tensor_from_data(ST_I64, 2, (int64_t[]){5, 4}, counts, sizeof counts, &ct));
    st_cluster_stats st[5];
    CHECK_OK(st_cluster_stats_compute(ct, st));
    /* mixed 3:1 */
    CHECK(st[0].size == 4 && st[0].n_dominant == 2);
    CHECK_CLOSE(st[0].purity, .75, 0, 0);
    CHECK_CLOSE(st[0].entropy, -(.75 * log2(.75) + .25 * log2(.25)), 0, 1e-15); /* 0.8113 bits */
    CHECK(st[0].dominant[0] == 0 && st[0].dominant[1] == 1 && st[0].dominant_fraction[1] == .25);
    /* empty */
    CHECK(st[1].size == 0 && st[1].purity == 0 && st[1].entropy == 0 && st[1].n_dominant == 0);
    /* uniform over 4: 2 bits, ties to the lower ids */
    CHECK_CLOSE(st[2].entropy, 2, 0, 1e-15);
    CHECK(st[2].n_dominant == 3 && st[2].dominant[0] == 0 && st[2].dominant[1] == 1 && st[2].dominant[2] == 2);
    /* pure */
    CHECK(st[3].purity == 1 && st[3].entropy == 0 && !signbit(st[3].entropy) && st[3].n_dominant == 1 &&
          st[3].dominant[0] == 1);
    /* increasing: the top three are 3, 2, 1 */
    CHECK(st[4].dominant[0] == 3 && st[4].dominant[1] == 2 && st[4].dominant[2] == 1);
    CHECK_CLOSE(st[4].dominant_fraction[0], .4, 0, 1e-15);
    CHECK_CLOSE(st[4].purity, .4, 0, 1e-15);

    st_json_writer *w = NULL;
    CHECK_OK(st_json_writer_new(false, &w));
    st_cluster_stats_write_json(w, st, 5, NULL);
    const char *text = NULL;
    size_t len = 0;
    CHECK_OK(st_json_writer_text(w, &text, &len));
    st_json *doc = NULL;
    if (text) CHECK_OK(st_json_parse(text, len, &doc));
    if (doc) {
        CHECK(st_json_size(doc) == 5);
        CHECK(st_json_number(st_json_get(st_json_at(doc, 4), "size")) == 10);
        CHECK(st_json_size(st_json_get(st_json_at(doc, 1), "dominant")) == 0);
        st_json_free(doc);
    }
    st_json_writer_free(w);

    st_tensor_set_flat(ct, 5, -1);
    CHECK_FAILS(st_cluster_stats_compute(ct, st), ST_EINVAL, "count [1, 1] is -1");
    st_tensor_free(ct);
}

int main(void)
{
    RUN(test_hand_worked);
    RUN(test_bootstrap);
    RUN(test_errors);
    RUN(test_cluster_counts_and_stats);
    return TEST_SUMMARY();
}
