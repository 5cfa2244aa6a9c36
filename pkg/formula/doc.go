// Package formula compiles and evaluates the formula of a ScaledObject's
// spec.advanced.scalingModifiers, the expression that folds the triggers'
// metric values into the one composite metric the HPA reads. It is pure
// (no I/O), so the webhook (to admit or deny) and the operator (to serve
// the composite metric and decide activation) read a formula the same way.
//
// The language is expr (github.com/expr-lang/expr), as in KEDA. The
// formula's variables are the names of the ScaledObject's triggers (see
// Variables): a name the formula uses that is not one of them makes
// Compile fail, as does a formula that does not parse, one whose type is
// known not to be a number (a comparison, a string), and one that fails or
// gives no number when every variable is 1, KEDA's admission check.
//
// At evaluation a variable missing from the values is nil, which is how a
// failing trigger reaches the formula: "a + b" then fails, while
// "a ?? b" or "b ?? 5" decide what to do without it.
package formula
