ALTER TABLE greetings DROP COLUMN seen;
