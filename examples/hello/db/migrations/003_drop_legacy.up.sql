-- gantry:contract
-- runs only once the revision is promoted and its watch is over: the
-- previous revision may still read the legacy table until then
DROP TABLE IF EXISTS legacy_greeting;
