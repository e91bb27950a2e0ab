/* Keeps a program core library non-empty while its folder has only main.c. */
typedef int empq__empty_translation_unit;
