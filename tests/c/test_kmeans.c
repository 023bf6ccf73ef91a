/* k-means: hand-worked Lloyd runs, the k-means++ sampling law, empty
 * clusters, determinism, and scikit-learn fixtures (same initial centres:
 * same labels, inertia within 1e-4 relative). */
#include <stdlib.h>
#include "strata/kmeans.h"
#include "testing.h"

static st_tensor *matrix(int64_t rows, int64_t cols, const float *v)
{
    st_tensor *t = NULL;
    CHECK_OK(st_tensor_from_data(ST_F32, 2, (int64_t[]){rows, cols}, v, sizeof(float) * (size_t)(rows * cols), &t));
    return t;
}

static int64_t label(const st_kmeans_result *r, int64_t i) { return ((int64_t *)r->labels->data)[i]; }

/* Fits with given initial centres (a single run, no rng). */
static st_kmeans_result *fit_from(st_tensor *x, st_tensor *init, double tol, int max_iter)
{
    st_kmeans_options o = st_kmeans_defaults(init->shape[0]);
    o.init = init;
    o.tol = tol;
    o.max_iter = max_iter;
    st_kmeans_result *r = NULL;
    CHECK_OK(st_kmeans_fit(x, &o, NULL, &r));
    return r;
}

static void test_two_obvious_clusters(void)
{
    float v[] = {0, 0, 0, 1, 1, 0, 10, 10, 10, 11, 11, 10};
    st_tensor *x = matrix(6, 2, v);
    st_rng rng;
    st_rng_seed(&rng, 11);
    st_kmeans_options o = st_kmeans_defaults(2);
    st_kmeans_result *r = NULL;
    CHECK_OK(st_kmeans_fit(x, &o, &rng, &r));
    if (r) {
        /* Centres (1/3, 1/3) and (31/3, 31/3); each cluster's inertia is
         * 2/9 + 5/9 + 5/9 = 4/3. */
        CHECK(label(r, 0) == label(r, 1) && label(r, 1) == label(r, 2));
        CHECK(label(r, 3) == label(r, 4) && label(r, 4) == label(r, 5));
        CHECK(label(r, 0) != label(r, 3));
        int64_t a = label(r, 0), b = label(r, 3);
        CHECK_CLOSE(st_f32(r->centers)[2 * a], 1.0 / 3, 1e-6, 1e-6);
        CHECK_CLOSE(st_f32(r->centers)[2 * a + 1], 1.0 / 3, 1e-6, 1e-6);
        CHECK_CLOSE(st_f32(r->centers)[2 * b], 31.0 / 3, 1e-6, 1e-6);
        CHECK_CLOSE(st_f32(r->centers)[2 * b + 1], 31.0 / 3, 1e-6, 1e-6);
        CHECK_CLOSE(r->inertia, 8.0 / 3, 1e-6, 0);
        CHECK(r->n_runs == 20);
        for (int i = 0; i < r->n_runs; i++) CHECK_CLOSE(r->run_inertia[i], 8.0 / 3, 1e-6, 0);
        CHECK(r->best_run == 0); /* all runs tie: the first wins */
    }
    st_kmeans_result_free(r);
    st_tensor_free(x);
}

/* 1-d data {0, 2, 4, 10, 14} (mean 6, population variance 27.2) from
 * centres {0, 4}, worked by hand:
 *  it 1: row 2 ties (4 vs 4) and goes to the lower centre: labels 00111,
 *        centres (1, 28/3), squared shift 1 + (16/3)^2 = 29.44;
 *  it 2: row 4 moves: labels 00011, centres (2, 12), shift 1 + (8/3)^2 = 8.11;
 *  it 3: no label changes (strict convergence); inertia 4+0+4+4+4 = 16. */
static void test_hand_worked_lloyd_and_tolerance(void)
{
    float v[] = {0, 2, 4, 10, 14}, c0[] = {0, 4};
    st_tensor *x = matrix(5, 1, v), *init = matrix(2, 1, c0);
    /* Default tol: runs to strict convergence after 3 iterations. */
    st_kmeans_result *r = fit_from(x, init, 1e-4, 300);
    if (r) {
        CHECK(r->n_iter == 3);
        CHECK_CLOSE(st_f32(r->centers)[0], 2.0, 0, 1e-6);
        CHECK_CLOSE(st_f32(r->centers)[1], 12.0, 0, 1e-6);
        CHECK_CLOSE(r->inertia, 16.0, 1e-9, 0);
        int64_t want[] = {0, 0, 0, 1, 1};
        for (int i = 0; i < 5; i++) CHECK(label(r, i) == want[i]);
        CHECK(r->run_seeds[0] == 0 && r->n_runs == 1);
    }
    st_kmeans_result_free(r);
    /* tol 1.1: 1.1 * 27.2 = 29.92 >= 29.44, so it stops after iteration 1;
     * the last assignment then uses centres (1, 28/3): labels 00011 and
     * inertia 1 + 1 + 9 + (2/3)^2 + (14/3)^2 = 299/9. With the sample
     * variance (34) instead, tol 1.05 would also stop here. */
    r = fit_from(x, init, 1.1, 300);
    if (r) {
        CHECK(r->n_iter == 1);
        CHECK_CLOSE(st_f32(r->centers)[1], 28.0 / 3, 1e-6, 0);
        CHECK_CLOSE(r->inertia, 299.0 / 9, 1e-6, 0);
        CHECK(label(r, 2) == 0);
    }
    st_kmeans_result_free(r);
    /* tol 1.05: 28.56 < 29.44 continues; 8.11 <= 28.56 stops after 2. */
    r = fit_from(x, init, 1.05, 300);
    if (r) {
        CHECK(r->n_iter == 2);
        CHECK_CLOSE(r->inertia, 16.0, 1e-9, 0);
    }
    st_kmeans_result_free(r);
    /* max_iter 1 behaves like the early stop. */
    r = fit_from(x, init, 0, 1);
    if (r) CHECK(r->n_iter == 1 && fabs(r->inertia - 299.0 / 9) < 1e-4);
    st_kmeans_result_free(r);
    st_tensor_free(x);
    st_tensor_free(init);
}

static void test_empty_clusters_are_relocated(void)
{
    /* {0, 1, 3, 20} (mean 6) from centres {1, 100, 101}: every row goes to
     * centre 0, so clusters 1 and 2 are empty. They take the farthest rows
     * from centre 1: 20 (distance^2 361), then 3 (4). Centres become
     * (0.5, 20, 3), and the next iteration settles: inertia 0.25 + 0.25. */
    float v[] = {0, 1, 3, 20}, c0[] = {1, 100, 101};
    st_tensor *x = matrix(4, 1, v), *init = matrix(3, 1, c0);
    st_kmeans_result *r = fit_from(x, init, 1e-4, 300);
    if (r) {
        CHECK(r->n_relocated == 2);
        CHECK_CLOSE(st_f32(r->centers)[0], 0.5, 0, 1e-6);
        CHECK_CLOSE(st_f32(r->centers)[1], 20.0, 0, 1e-6);
        CHECK_CLOSE(st_f32(r->centers)[2], 3.0, 0, 1e-6);
        CHECK_CLOSE(r->inertia, 0.5, 1e-9, 0);
        int64_t want[] = {0, 0, 2, 1};
        for (int i = 0; i < 4; i++) CHECK(label(r, i) == want[i]);
    }
    st_kmeans_result_free(r);
    st_tensor_free(x);
    st_tensor_free(init);

    /* {0, 1, 50} (mean 17) from {0.5, 40, 1000}: 50 alone in cluster 1 is
     * the farthest row (100) but taking it would empty cluster 1, so the
     * empty cluster 2 takes row 0 (0.25, tied with row 1: lower index).
     * Centres (1, 50, 0); iteration 2 relabels row 0 and moves nothing, so
     * the shift test stops it there. */
    float v2[] = {0, 1, 50}, c2[] = {0.5f, 40, 1000};
    x = matrix(3, 1, v2);
    init = matrix(3, 1, c2);
    r = fit_from(x, init, 1e-4, 300);
    if (r) {
        CHECK(r->n_relocated == 1);
        CHECK(r->n_iter == 2);
        CHECK(label(r, 0) == 2 && label(r, 1) == 0 && label(r, 2) == 1);
        CHECK_CLOSE(r->inertia, 0.0, 0, 1e-9);
    }
    st_kmeans_result_free(r);
    st_tensor_free(x);
    st_tensor_free(init);
}

static void test_as_many_clusters_as_rows(void)
{
    /* 2100 distinct rows, each one a starting centre (in reverse order):
     * every row is its own cluster from the first iteration on, inertia 0.
     * (k this large also shrinks the row blocks below their default.) */
    enum { n = 2100 };
    static float v[n * 2], c[n * 2];
    for (int i = 0; i < n; i++) {
        v[2 * i] = (float)(i % 50);
        v[2 * i + 1] = (float)(i / 50);
        c[2 * (n - 1 - i)] = v[2 * i];
        c[2 * (n - 1 - i) + 1] = v[2 * i + 1];
    }
    st_tensor *x = matrix(n, 2, v), *init = matrix(n, 2, c);
    st_kmeans_result *r = fit_from(x, init, 1e-4, 300);
    if (r) {
        int64_t wrong = 0;
        for (int i = 0; i < n; i++) wrong += label(r, i) != n - 1 - i;
        CHECK(wrong == 0);
        CHECK(r->inertia == 0);
        CHECK(r->n_iter == 1 && r->n_relocated == 0); /* centres do not move: shift 0 */
    }
    st_kmeans_result_free(r);
    st_tensor_free(x);
    st_tensor_free(init);
}

/* Frequencies of the chosen pair {a, b} over many seeds, for 1-d data
 * {0, 1, 5} (mean 2, so all distances are exact) and k = 2. */
static void pair_frequencies(int trials, int draws, double freq[3])
{
    float v[] = {0, 1, 5};
    st_tensor *x = matrix(3, 1, v), *c = NULL;
    int count[3] = {0, 0, 0};
    st_rng rng;
    st_rng_seed(&rng, 99);
    for (int d = 0; d < draws; d++) {
        CHECK_OK(st_kmeans_plusplus(x, 2, trials, &rng, &c));
        float a = st_f32(c)[0], b = st_f32(c)[1];
        float lo = a < b ? a : b, hi = a < b ? b : a;
        CHECK(lo != hi);
        count[lo == 0 && hi == 1 ? 0 : lo == 0 ? 1 : 2]++;
    }
    for (int i = 0; i < 3; i++) freq[i] = (double)count[i] / draws;
    st_tensor_free(c);
    st_tensor_free(x);
}

static void test_plusplus_sampling_law(void)
{
    /* Plain D^2 sampling (1 trial): the first centre is uniform; then
     * from 0: d^2 = (0, 1, 25); from 1: (1, 0, 16); from 5: (25, 16, 0). */
    int n = 20000;
    double f[3], se = 5 * sqrt(0.25 / n);
    pair_frequencies(1, n, f);
    CHECK_CLOSE(f[0], (1.0 / 26 + 1.0 / 17) / 3, 0, se);
    CHECK_CLOSE(f[1], (25.0 / 26 + 25.0 / 41) / 3, 0, se);
    CHECK_CLOSE(f[2], (16.0 / 17 + 16.0 / 41) / 3, 0, se);
    /* Greedy with 2 trials: from 0 or 1 the candidate 5 always lowers
     * the potential more, so the near point wins only if drawn twice;
     * from 5 both candidates leave potential 1 and the first drawn wins. */
    pair_frequencies(2, n, f);
    CHECK_CLOSE(f[0], (1.0 / 676 + 1.0 / 289) / 3, 0, se);
    CHECK_CLOSE(f[1], (1 - 1.0 / 676 + 25.0 / 41) / 3, 0, se);
    CHECK_CLOSE(f[2], (1 - 1.0 / 289 + 16.0 / 41) / 3, 0, se);
}

static void test_plusplus_finds_separated_groups(void)
{
    /* Four tight groups far apart: greedy seeding puts one centre in each. */
    float v[40];
    for (int i = 0; i < 20; i++) {
        v[2 * i] = (float)(100 * (i % 4)) + 0.01f * (float)i;
        v[2 * i + 1] = (float)((i % 4) == 2 ? 100 : 0);
    }
    st_tensor *x = matrix(20, 2, v), *c = NULL;
    st_rng rng;
    st_rng_seed(&rng, 5);
    for (int s = 0; s < 200; s++) {
        CHECK_OK(st_kmeans_plusplus(x, 4, 0, &rng, &c));
        int seen = 0;
        for (int j = 0; c && j < 4; j++) seen |= 1 << (int)lrintf(st_f32(c)[2 * j] / 100);
        CHECK(seen == 15);
    }
    st_tensor_free(c);
    st_tensor_free(x);
}

static st_tensor *random_data(uint64_t seed, int64_t n, int64_t d)
{
    st_rng rng;
    st_rng_seed(&rng, seed);
    st_tensor *x = NULL;
    CHECK_OK(st_tensor_new(ST_F32, 2, (int64_t[]){n, d}, &x));
    CHECK_OK(st_rng_fill_normal(&rng, x, 0, 1));
    for (int64_t i = 0; i < n; i++) st_f32(x)[i * d] += (float)(5 * (i % 3)); /* 3 loose groups */
    return x;
}

static bool same_result(const st_kmeans_result *a, const st_kmeans_result *b)
{
    return a->inertia == b->inertia && a->n_iter == b->n_iter && a->best_run == b->best_run &&
           !memcmp(a->centers->data, b->centers->data, st_tensor_nbytes(a->centers)) &&
           !memcmp(a->labels->data, b->labels->data, st_tensor_nbytes(a->labels)) &&
           !memcmp(a->run_seeds, b->run_seeds, sizeof(uint64_t) * (size_t)a->n_runs);
}

static void test_same_seed_same_result_and_runs_repeat(void)
{
    st_tensor *x = random_data(1, 600, 6);
    st_kmeans_options o = st_kmeans_defaults(7);
    o.n_init = 5;
    st_kmeans_result *a = NULL, *b = NULL, *c = NULL, *one = NULL;
    st_rng rng;
    st_rng_seed(&rng, 42);
    CHECK_OK(st_kmeans_fit(x, &o, &rng, &a));
    st_rng_seed(&rng, 42);
    CHECK_OK(st_kmeans_fit(x, &o, &rng, &b));
    st_rng_seed(&rng, 43);
    CHECK_OK(st_kmeans_fit(x, &o, &rng, &c));
    st_kmeans_result *par = NULL;
    o.n_threads = 3; /* runs spread over threads: the same answer */
    st_rng_seed(&rng, 42);
    CHECK_OK(st_kmeans_fit(x, &o, &rng, &par));
    if (par && a) {
        CHECK(same_result(a, par));
        for (int i = 0; i < a->n_runs; i++) CHECK(a->run_inertia[i] == par->run_inertia[i]);
        CHECK(a->n_relocated == par->n_relocated);
    }
    st_kmeans_result_free(par);
    o.n_threads = 1;
    if (a && b && c) {
        CHECK(same_result(a, b));
        CHECK(a->run_seeds[0] != c->run_seeds[0]);
        for (int i = 0; i < a->n_runs; i++) CHECK(a->run_inertia[a->best_run] <= a->run_inertia[i]);
        /* The recorded seed of the best run repeats it: seeding from it,
         * then one run from those centres, gives the same answer. */
        st_rng run;
        st_rng_seed(&run, a->run_seeds[a->best_run]);
        st_tensor *init = NULL;
        CHECK_OK(st_kmeans_plusplus(x, 7, 0, &run, &init));
        o.init = init;
        CHECK_OK(st_kmeans_fit(x, &o, NULL, &one));
        if (one) {
            CHECK(one->inertia == a->inertia && one->n_iter == a->n_iter);
            CHECK(!memcmp(one->centers->data, a->centers->data, st_tensor_nbytes(a->centers)));
            CHECK(!memcmp(one->labels->data, a->labels->data, st_tensor_nbytes(a->labels)));
        }
        st_tensor_free(init);
        /* predict with the final centres gives the same labels and inertia. */
        st_tensor *lab = NULL;
        double inert = 0;
        CHECK_OK(st_kmeans_predict(x, a->centers, &lab, &inert));
        if (lab) CHECK(!memcmp(lab->data, a->labels->data, st_tensor_nbytes(lab)));
        CHECK_CLOSE(inert, a->inertia, 1e-5, 0);
        st_tensor_free(lab);
    }
    st_kmeans_result_free(a);
    st_kmeans_result_free(b);
    st_kmeans_result_free(c);
    st_kmeans_result_free(one);
    st_tensor_free(x);
}

static void test_strided_rows_match_contiguous(void)
{
    /* Every other row, columns 1..4 of a wider matrix, as a memory map of
     * a larger array would present them. */
    st_tensor *big = random_data(3, 400, 7), *rows = NULL, *v = NULL, *c = NULL;
    CHECK_OK(st_tensor_slice(big, 0, 0, 400, 2, &rows));
    CHECK_OK(st_tensor_slice(rows, 1, 1, 5, 1, &v));
    CHECK_OK(st_tensor_clone(v, &c));
    st_kmeans_options o = st_kmeans_defaults(4);
    o.n_init = 3;
    st_kmeans_result *a = NULL, *b = NULL;
    st_rng rng;
    st_rng_seed(&rng, 8);
    CHECK_OK(st_kmeans_fit(v, &o, &rng, &a));
    st_rng_seed(&rng, 8);
    CHECK_OK(st_kmeans_fit(c, &o, &rng, &b));
    if (a && b) CHECK(same_result(a, b));
    st_kmeans_result_free(a);
    st_kmeans_result_free(b);
    st_tensor *list[] = {big, rows, v, c};
    for (int i = 0; i < 4; i++) st_tensor_free(list[i]);
}

/* ---- scikit-learn fixtures (tests/fixtures/make_kmeans_fixtures.py) ---- */

typedef struct fixture {
    st_tensor *x, *init, *centers;
    int64_t *labels;
    double inertia, best20;
    int n_iter;
} fixture;

static bool read_matrix(FILE *f, const char *key, st_tensor **out)
{
    char word[32];
    long long r, c;
    if (fscanf(f, " %31s %lld %lld", word, &r, &c) != 3 || strcmp(word, key)) return false;
    CHECK_OK(st_tensor_new(ST_F32, 2, (int64_t[]){r, c}, out));
    for (long long i = 0; *out && i < r * c; i++)
        if (fscanf(f, "%f", &st_f32(*out)[i]) != 1) return false;
    return *out != NULL;
}

static bool skip_comments(FILE *f)
{
    int ch;
    while ((ch = fgetc(f)) == '#')
        while ((ch = fgetc(f)) != '\n' && ch != EOF) {
        }
    return ch != EOF && ungetc(ch, f) != EOF;
}

static bool load_fixture(const char *name, fixture *fx)
{
    const char *dir = getenv("STRATA_FIXTURES");
    char path[1024], word[32];
    snprintf(path, sizeof path, "%s/kmeans_%s.txt", dir ? dir : "tests/fixtures", name);
    memset(fx, 0, sizeof *fx);
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "cannot open fixture %s\n", path);
        return false;
    }
    long long n;
    bool ok = skip_comments(f) && read_matrix(f, "x", &fx->x) && read_matrix(f, "init", &fx->init) &&
              fscanf(f, " %31s %lld", word, &n) == 2 && !strcmp(word, "labels") && n == fx->x->shape[0];
    if (ok) {
        fx->labels = malloc(sizeof(int64_t) * (size_t)n);
        for (long long i = 0; ok && i < n; i++) ok = fscanf(f, "%lld", (long long *)&fx->labels[i]) == 1;
    }
    ok = ok && read_matrix(f, "centers", &fx->centers) && fscanf(f, " inertia %lf", &fx->inertia) == 1 &&
         fscanf(f, " n_iter %d", &fx->n_iter) == 1;
    if (ok && fscanf(f, " best20 %lf", &fx->best20) != 1) fx->best20 = 0;
    fclose(f);
    if (!ok) fprintf(stderr, "fixture %s is malformed\n", path);
    return ok;
}

static void free_fixture(fixture *fx)
{
    st_tensor_free(fx->x);
    st_tensor_free(fx->init);
    st_tensor_free(fx->centers);
    free(fx->labels);
}

static void check_against_sklearn(const char *name, bool expect_relocation)
{
    fixture fx;
    bool loaded = load_fixture(name, &fx);
    CHECK(loaded);
    if (loaded) {
        st_kmeans_result *r = fit_from(fx.x, fx.init, 1e-4, 300);
        if (r) {
            CHECK_CLOSE(r->inertia, fx.inertia, 1e-4, 0);
            CHECK(r->n_iter == fx.n_iter);
            int64_t wrong = 0;
            for (int64_t i = 0; i < fx.x->shape[0]; i++) wrong += label(r, i) != fx.labels[i];
            CHECK(wrong == 0);
            for (int64_t i = 0; i < st_tensor_numel(fx.centers); i++)
                CHECK_CLOSE(st_f32(r->centers)[i], st_f32(fx.centers)[i], 1e-4, 1e-4);
            CHECK((r->n_relocated > 0) == expect_relocation);
        }
        st_kmeans_result_free(r);
        if (fx.best20 > 0) {
            /* k-means++ with 20 restarts finds sklearn's optimum (or better). */
            st_kmeans_options o = st_kmeans_defaults(fx.init->shape[0]);
            st_rng rng;
            st_rng_seed(&rng, 2020);
            CHECK_OK(st_kmeans_fit(fx.x, &o, &rng, &r));
            if (r) CHECK(r->inertia <= fx.best20 * (1 + 1e-4));
            st_kmeans_result_free(r);
        }
    }
    free_fixture(&fx);
}

static void test_matches_sklearn_fixtures(void)
{
    check_against_sklearn("blobs", false);
    check_against_sklearn("sphere", false);
    check_against_sklearn("empty", true);
}

static void test_bad_input_is_rejected(void)
{
    float v[] = {0, 1, 2, 3, 4, 5};
    st_tensor *x = matrix(3, 2, v), *bad_init = matrix(2, 3, v), *t = NULL;
    st_kmeans_result *r = NULL;
    st_rng rng;
    st_rng_seed(&rng, 1);
    st_kmeans_options o = st_kmeans_defaults(4);
    CHECK_FAILS(st_kmeans_fit(x, &o, &rng, &r), ST_EINVAL, "1 <= k <= rows (3)");
    o = st_kmeans_defaults(2);
    o.n_init = 0;
    CHECK_FAILS(st_kmeans_fit(x, &o, &rng, &r), ST_EINVAL, "n_init");
    o = st_kmeans_defaults(2);
    o.tol = -1;
    CHECK_FAILS(st_kmeans_fit(x, &o, &rng, &r), ST_EINVAL, "tol");
    o = st_kmeans_defaults(2);
    o.max_iter = 0;
    CHECK_FAILS(st_kmeans_fit(x, &o, &rng, &r), ST_EINVAL, "max_iter");
    o = st_kmeans_defaults(2);
    CHECK_FAILS(st_kmeans_fit(x, &o, NULL, &r), ST_EINVAL, "rng");
    o.init = bad_init;
    CHECK_FAILS(st_kmeans_fit(x, &o, &rng, &r), ST_ESHAPE, "init centres: shape [2,2] expected, got [2,3]");
    CHECK_OK(st_tensor_transpose(x, 0, 1, &t));
    o = st_kmeans_defaults(1);
    CHECK_FAILS(st_kmeans_fit(t, &o, &rng, &r), ST_ESHAPE, "contiguous");
    st_f32(x)[3] = NAN;
    o = st_kmeans_defaults(2);
    CHECK_FAILS(st_kmeans_fit(x, &o, &rng, &r), ST_ENUMERIC, "row 1, column 1");
    CHECK(r == NULL);
    st_tensor_free(x);
    st_tensor_free(bad_init);
    st_tensor_free(t);
    st_kmeans_result_free(NULL);
}

int main(void)
{
    RUN(test_two_obvious_clusters);
    RUN(test_hand_worked_lloyd_and_tolerance);
    RUN(test_empty_clusters_are_relocated);
    RUN(test_as_many_clusters_as_rows);
    RUN(test_plusplus_sampling_law);
    RUN(test_plusplus_finds_separated_groups);
    RUN(test_same_seed_same_result_and_runs_repeat);
    RUN(test_strided_rows_match_contiguous);
    RUN(test_matches_sklearn_fixtures);
    RUN(test_bad_input_is_rejected);
    return TEST_SUMMARY();
}
