-- How a function's executions use its worker's process (and each version's snapshot of it):
-- 'fork' (a fresh process per execution) or 'reuse' (the worker's long-lived process). Rows
-- from before get the behaviour they had: 'reuse' where the function's runtime is of kind
-- nodejs (the kind `RuntimeKind::from_image` reads from the image: the last '/'-separated
-- part of the image, lowercased, starts with "node"), 'fork' everywhere else.
ALTER TABLE functions ADD COLUMN execution_mode TEXT NOT NULL DEFAULT 'fork';
ALTER TABLE function_versions ADD COLUMN execution_mode TEXT NOT NULL DEFAULT 'fork';
UPDATE functions SET execution_mode = 'reuse'
 WHERE runtime_id IN (
     SELECT id FROM runtimes
      WHERE substr(lower(image), length(rtrim(image, replace(image, '/', ''))) + 1) LIKE 'node%'
 );
UPDATE function_versions SET execution_mode = 'reuse'
 WHERE function_id IN (SELECT id FROM functions WHERE execution_mode = 'reuse');
