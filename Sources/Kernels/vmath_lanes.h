// exp, tanh and sigmoid over one vector width, included by vmath.c once per width (AVX2: 8 lanes, AVX-512F: 16),
// which defines the vector operations below first. Every lane goes through the same operations in the same order
// at either width, so the bits are the same (a NaN's payload aside). Needs:
//   VF, VI, VM             float vector, int vector, lane mask types
//   V_TARGET               the function attribute that enables the width's instructions
//   V_NAME(name)           name with the width appended (exp8, exp16, ...)
//   V_LANES                lanes per vector
//   V_SET1, V_SET1I        broadcast a float, an int
//   V_ADD, V_SUB, V_MUL, V_DIV, V_MIN, V_MAX, V_FMADD, V_FNMADD, V_ROUND   float arithmetic (min/max: vminps/vmaxps,
//                          which return the second operand when one is NaN)
//   V_CVT, V_ADDI, V_SUBI, V_SRAI, V_SLLI, V_ANDI, V_ORI, V_ASF, V_ASI     int conversion, arithmetic and bits
//   V_ANY_GT(a, b), V_ANY_LT(a, b)   whether some lane has a > b (a < b), ordered (NaN: false)
//   V_SIGN_SELECT(a, b, x)   b in the lanes where x's sign bit is set, else a
//   V_LOAD, V_STORE, V_TAIL(count), V_LOAD_TAIL(m, p), V_STORE_TAIL(p, m, v)   (masked: lanes past count untouched)

// e^a - 1 = 2^n (1 + q) - 1 for the functions below: n = round(a / ln2), r = a - n ln2 (two-part ln2),
// q = e^r - 1 = r + r^2 P(r) with P of degree 4 (minimax for the relative error of e^r on |r| <= ln2 / 2,
// coefficients rounded to float one at a time, the rest refitted). Returns q; *n_out = n (as a float).
V_TARGET
static inline VF V_NAME(expm1_core)(VF a, VF *n_out) {
    VF n = V_ROUND(V_MUL(a, V_SET1(LOG2E)));
    VF r = V_FNMADD(n, V_SET1(LN2_HI), a);
    r = V_FNMADD(n, V_SET1(LN2_LO), r);
    VF p = V_SET1(XC6);
    p = V_FMADD(p, r, V_SET1(XC5));
    p = V_FMADD(p, r, V_SET1(XC4));
    p = V_FMADD(p, r, V_SET1(XC3));
    p = V_FMADD(p, r, V_SET1(XC2));
    *n_out = n;
    return V_FMADD(p, V_MUL(r, r), r);
}

V_TARGET
static inline VF V_NAME(pow2)(VF n) {  // 2^n for integral -126 <= n <= 127, exact
    return V_ASF(V_SLLI(V_ADDI(V_CVT(n), V_SET1I(127)), 23));
}

V_TARGET
static inline VF V_NAME(scaled_one_factor)(VF q, VF n) {
    // 2^n (1 + q) as one FMA from exact parts: the fast path, while every 2^n is normal.
    VF s = V_NAME(pow2)(n);
    return V_FMADD(s, q, s);
}

V_TARGET
static inline VF V_NAME(scaled_two_factors)(VF q, VF n) {
    // 2^n (1 + q) as 2^(n/2) (1 + q) 2^(n - n/2): each factor normal for every n the slow paths clamp to, so
    // results that overflow give +inf and those below FLT_MIN come out as subnormals.
    VI ni = V_CVT(n);
    VI n1 = V_SRAI(ni, 1);
    VI n2 = V_SUBI(ni, n1);
    VI bias = V_SET1I(127);
    VF s1 = V_ASF(V_SLLI(V_ADDI(n1, bias), 23));
    VF s2 = V_ASF(V_SLLI(V_ADDI(n2, bias), 23));
    return V_MUL(V_FMADD(s1, q, s1), s2);
}

V_TARGET
static inline VF V_NAME(abs)(VF x) { return V_ASF(V_ANDI(V_ASI(x), V_SET1I(0x7fffffff))); }

V_TARGET
static inline VF V_NAME(exp)(VF x) {
    // While every |x| <= 87, s = 2^n is normal and e^x = s (1 + q) is one FMA. A vector holding some larger |x|
    // clamps x to [-104, 89] and scales by two factors 2^(n/2) 2^(n - n/2), so that results that overflow give
    // +inf and results below FLT_MIN come out as scaled subnormals; where the result is normal both give the same
    // bits (scaling by a power of two is exact), so a lane's result never depends on its neighbours.
    VF n, q;
    if (__builtin_expect(V_ANY_GT(V_NAME(abs)(x), V_SET1(EXP_FAST_HI)), 0)) {
        x = V_MIN(V_SET1(EXP_HI), x);  // x stays NaN
        x = V_MAX(V_SET1(EXP_LO), x);
        q = V_NAME(expm1_core)(x, &n);
        return V_NAME(scaled_two_factors)(q, n);
    }
    q = V_NAME(expm1_core)(x, &n);
    return V_NAME(scaled_one_factor)(q, n);
}

V_TARGET
static inline VF V_NAME(tanh)(VF x) {
    // With s = 2^n and e^a = s (1 + q) for a = -2|x|: tanh|x| = (1 - e^a) / (1 + e^a), numerator and denominator
    // each one rounding from exact s and q (1 - s, 1 + s are exact for n >= -23), so small |x| (n = 0: s = 1,
    // numerator -q) loses nothing to cancellation. a >= -18.5 keeps s normal; tanh rounds to 1 long before.
    VF a = V_MUL(V_NAME(abs)(x), V_SET1(-2.0f));
    a = V_MAX(V_SET1(TANH_LO), a);  // a stays NaN
    VF n;
    VF q = V_NAME(expm1_core)(a, &n);
    VF s = V_NAME(pow2)(n);
    VF one = V_SET1(1.0f);
    VF num = V_FNMADD(s, q, V_SUB(one, s));
    VF den = V_FMADD(s, q, V_ADD(one, s));
    VI sign = V_ANDI(V_ASI(x), V_SET1I((int)0x80000000u));
    return V_ASF(V_ORI(V_ASI(V_DIV(num, den)), sign));
}

V_TARGET
static inline VF V_NAME(sigmoid)(VF x) {
    // e = exp(-|x|) = s (1 + q) never overflows; sigmoid = 1 / (1 + e) for x >= 0, e / (1 + e) for x < 0 (keeps
    // the tiny results of very negative x, down to subnormals, instead of flushing them to 0). While every
    // -|x| >= -87, s = 2^n is normal and e is one rounding (an FMA). Only a vector with some |x| > 87 takes the
    // slower scaling by two factors 2^(n/2) 2^(n - n/2), which gives the same bits wherever e is normal (scaling
    // by a power of two is exact there): a lane's result never depends on its neighbours.
    VF one = V_SET1(1.0f);
    VF a = V_ASF(V_ORI(V_ASI(x), V_SET1I((int)0x80000000u)));  // -|x|; NaN stays NaN (and fails the compare)
    VF n, q, e;
    if (__builtin_expect(V_ANY_LT(a, V_SET1(SIGMOID_FAST_LO)), 0)) {
        a = V_MAX(V_SET1(EXP_LO), a);
        q = V_NAME(expm1_core)(a, &n);
        e = V_NAME(scaled_two_factors)(q, n);
    } else {
        q = V_NAME(expm1_core)(a, &n);
        e = V_NAME(scaled_one_factor)(q, n);
    }
    // The numerator by x's sign bit (-0 takes e = 1, the same as 1): no compare.
    return V_DIV(V_SIGN_SELECT(one, e, x), V_ADD(one, e));
}

// y[i] = f(x[i]) two vectors at a time, then one, then a masked tail.
#define V_LOOP(f)                                                                         \
    long i = 0;                                                                           \
    for (; i + 2 * V_LANES <= n; i += 2 * V_LANES) {                                      \
        VF a = V_LOAD(x + i), b = V_LOAD(x + i + V_LANES);                                \
        V_STORE(y + i, f(a));                                                             \
        V_STORE(y + i + V_LANES, f(b));                                                   \
    }                                                                                     \
    for (; i + V_LANES <= n; i += V_LANES) V_STORE(y + i, f(V_LOAD(x + i)));              \
    if (i < n) {                                                                          \
        VM m = V_TAIL(n - i);                                                             \
        V_STORE_TAIL(y + i, m, f(V_LOAD_TAIL(m, x + i)));                                 \
    }

V_TARGET __attribute__((unused)) static void V_NAME(vexp)(const float *x, float *y, long n) { V_LOOP(V_NAME(exp)) }
V_TARGET __attribute__((unused)) static void V_NAME(vtanh)(const float *x, float *y, long n) { V_LOOP(V_NAME(tanh)) }
V_TARGET __attribute__((unused)) static void V_NAME(vsigmoid)(const float *x, float *y, long n) { V_LOOP(V_NAME(sigmoid)) }

#undef V_LOOP
