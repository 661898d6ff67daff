/**
 * `{{name}}` templates for object names, endpoints and PromQL. Pure string work, so the workflow
 * can render the names its activity inputs carry (and the history shows them).
 */

/** Placeholders a template may use. */
export const TEMPLATE_VARIABLES = ['app', 'namespace', 'slot', 'version', 'run', 'window', 'service'] as const;
export type TemplateVariable = (typeof TEMPLATE_VARIABLES)[number];
export type TemplateVariables = Partial<Record<TemplateVariable, string>>;

/** Matches one `{{ name }}` (or `{{ label.key }}`) placeholder; global: use it with matchAll or replace only. */
export const PLACEHOLDER = /\{\{\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_./-]+)?)\s*\}\}/g;

/** Fills the placeholders it has values for and leaves the others as they are. */
export function renderTemplate(
  template: string,
  variables: TemplateVariables | Readonly<Record<string, string | undefined>>,
): string {
  return template.replace(PLACEHOLDER, (whole, name: string) => {
    const value = (variables as Readonly<Record<string, string | undefined>>)[name];
    return value === undefined ? whole : value;
  });
}
