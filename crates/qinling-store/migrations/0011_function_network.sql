-- Outbound network access per function (and per version snapshot): 0 = loopback only (the
-- default, as before), 1 = egress through the sandbox's user-mode network stack.
ALTER TABLE functions ADD COLUMN network INTEGER NOT NULL DEFAULT 0;
ALTER TABLE function_versions ADD COLUMN network INTEGER NOT NULL DEFAULT 0;
