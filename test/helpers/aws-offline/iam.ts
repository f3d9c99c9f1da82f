import type { PolicyStatementJson } from './template.js';

/** IAM's wildcard match: `*` any run of characters, `?` one character, case-sensitive. */
export function iamMatch(pattern: string, value: string): boolean {
  const re = new RegExp(
    `^${pattern
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
  );
  return re.test(value);
}

const list = (v: string | readonly string[]): readonly string[] => (typeof v === 'string' ? [v] : v);

/** The request context keys a condition may test, e.g. `{ 's3:prefix': 'data/' }`. */
export type RequestContext = Readonly<Record<string, string>>;

function conditionsHold(statement: PolicyStatementJson, context: RequestContext): boolean {
  for (const [operator, tests] of Object.entries(statement.Condition ?? {})) {
    for (const [key, expected] of Object.entries(tests)) {
      const actual = context[key];
      // A condition on a key the request does not carry does not hold (IAM's rule for absent keys).
      if (actual === undefined) return false;
      const ok =
        operator === 'StringLike'
          ? list(expected).some((p) => iamMatch(p, actual))
          : operator === 'StringEquals'
            ? list(expected).includes(actual)
            : false;
      if (!ok) return false;
    }
  }
  return true;
}

/**
 * Whether identity policy statements allow an action on a resource: some Allow matches (action,
 * resource and conditions) and no Deny does. Enough of IAM's evaluation for the statements CAI's stack
 * writes, to check offline that its roles allow what its code does.
 *
 * @example isAllowed(role.policy, 's3:GetObject', 'arn:aws:s3:::b/out/runs/x/items.json') // true
 */
export function isAllowed(
  statements: readonly PolicyStatementJson[],
  action: string,
  resource: string,
  context: RequestContext = {},
): boolean {
  const applies = (s: PolicyStatementJson) =>
    list(s.Action).some((a) => iamMatch(a.toLowerCase(), action.toLowerCase())) &&
    list(s.Resource).some((r) => iamMatch(r, resource)) &&
    conditionsHold(s, context);
  if (statements.some((s) => s.Effect === 'Deny' && applies(s))) return false;
  return statements.some((s) => s.Effect === 'Allow' && applies(s));
}
