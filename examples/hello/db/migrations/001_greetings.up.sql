-- expand: a new table the old code does not know about
CREATE TABLE greetings (
    id integer PRIMARY KEY,
    lang text NOT NULL UNIQUE,
    text text NOT NULL
);
INSERT INTO greetings (lang, text) VALUES ('en', 'hello'), ('fr', 'bonjour');
